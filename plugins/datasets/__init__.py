"""Dataset plugins: ``mnist1d``, ``digits`` and ``synthetic`` (all generated or shipped locally)."""

from ridgeline.core import hookimpl
from ridgeline.plugins.datasets.local import DigitsDataset, MNIST1DDataset, SyntheticDataset


@hookimpl
def register_datasets(register):
    register("mnist1d", MNIST1DDataset)
    register("digits", DigitsDataset)
    register("synthetic", SyntheticDataset)
