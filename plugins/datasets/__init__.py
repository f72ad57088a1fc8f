"""Dataset plugins: ``mnist1d``, ``digits``, ``synthetic`` and ``tabular`` (all generated or shipped
locally)."""

from ridgeline.core import hookimpl
from ridgeline.plugins.datasets.local import DigitsDataset, MNIST1DDataset, SyntheticDataset
from ridgeline.plugins.datasets.tabular import TabularDataset


@hookimpl
def register_datasets(register):
    register("mnist1d", MNIST1DDataset)
    register("digits", DigitsDataset)
    register("synthetic", SyntheticDataset)
    register("tabular", TabularDataset)
