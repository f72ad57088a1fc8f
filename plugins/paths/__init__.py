"""Path plugins: ``linear``."""

from ridgeline.core.plugins import hookimpl
from ridgeline.plugins.paths.linear import LinearPath


@hookimpl
def register_paths(register):
    register("linear", LinearPath)
