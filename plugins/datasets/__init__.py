"""Dataset plugins: ``mnist1d``, ``digits`` and ``synthetic`` (all generated or shipped locally).

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
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_datasets(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
