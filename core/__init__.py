"""ridgeline's core: interfaces, plugin host, registries, pipeline, results store and errors.

The core holds no algorithm; first-party and third-party plugins supply them through the
hooks in :mod:`ridgeline.core.hookspecs`. Import from the submodules, e.g.
``from ridgeline.core.spec import PermutationSpec``.
"""

__version__ = "0.1.0"
