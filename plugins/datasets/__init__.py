"""Dataset plugins: generated or bundled (``mnist1d``, ``digits``, ``synthetic``, ``tabular``) and
read from local files, never downloaded (``image_folder``, ``cifar10``, ``cifar100``, ``tensors``).

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("mnist1d", "local:MNIST1DDataset",
     "MNIST-1D (Greydanus 2020): 40-sample 1-D digit signals, 10 classes, generated offline."),
    ("digits", "local:DigitsDataset",
     "scikit-learn's bundled 8x8 handwritten digits (1797 images), as 1x8x8 images."),
    ("synthetic", "local:SyntheticDataset",
     "Seeded Gaussian classes: ``num_classes`` means on a sphere of radius ``separation``, "
     "unit-variance noise, ``features`` dimensions (or ``image_size`` for C x H x W inputs)."),
    ("tabular", "tabular:TabularDataset",
     "scikit-learn's bundled tabular sets (breast_cancer, wine, iris), standardised, seeded "
     "split."),
    ("image_folder", "image_folder:ImageFolderDataset",
     "Images on disk in root/<split>/<class>/*.png|jpg; options root, image_size, normalize, "
     "max_examples, augment, cache."),
    ("cifar10", "cifar:Cifar10Dataset",
     "CIFAR-10 from the official python batches in ``root`` (never downloaded), 10 classes."),
    ("cifar100", "cifar:Cifar100Dataset",
     "CIFAR-100 from the official python batches in ``root`` (never downloaded); ``labels`` "
     "``fine`` (100 classes, default) or ``coarse`` (20 superclasses)."),
    ("tensors", "tensors:TensorsDataset",
     "Arrays in one .npz or .safetensors file (``path``): x_train, y_train, x_test, y_test."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_datasets(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
