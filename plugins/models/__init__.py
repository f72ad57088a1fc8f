"""Model plugins: ``mlp``, ``timm`` and ``convnet``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("mlp", "mlp:MLPModel",
     "Fully connected ReLU network; ``widths`` (default 3 x 512) or ``width`` and ``depth``."),
    ("timm", "timm_models:TimmModel",
     "A timm architecture (``arch``) with ``num_classes`` outputs and ``in_chans`` from the input."),
    ("convnet", "convnet:ConvNetModel",
     "Conv-BN-ReLU blocks of ``widths`` channels (default 32, 64, 64) on C x H x W inputs; "
     "``batchnorm`` (default True); a max-pool after every ``pool_every`` blocks (0: never)."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_models(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
