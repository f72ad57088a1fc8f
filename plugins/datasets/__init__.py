"""Dataset plugins: generated or bundled (``mnist1d``, ``digits``, ``synthetic``, ``tabular``) and
read from local files, never downloaded (``image_folder``, ``cifar10``, ``cifar100``, ``tensors``)."""

from ridgeline.core import hookimpl
from ridgeline.plugins.datasets.cifar import Cifar10Dataset, Cifar100Dataset
from ridgeline.plugins.datasets.image_folder import ImageFolderDataset
from ridgeline.plugins.datasets.local import DigitsDataset, MNIST1DDataset, SyntheticDataset
from ridgeline.plugins.datasets.tabular import TabularDataset
from ridgeline.plugins.datasets.tensors import TensorsDataset


@hookimpl
def register_datasets(register):
    register("mnist1d", MNIST1DDataset)
    register("digits", DigitsDataset)
    register("synthetic", SyntheticDataset)
    register("tabular", TabularDataset)
    register("image_folder", ImageFolderDataset)
    register("cifar10", Cifar10Dataset)
    register("cifar100", Cifar100Dataset)
    register("tensors", TensorsDataset)
