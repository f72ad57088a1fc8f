"""Model plugins: ``mlp``, ``timm``, ``convnet``, ``cifar_resnet``, ``cifar_vgg``, ``soft_trees``
and ``smoe_mlp``.

Each entry is registered by import path with its summary (the first sentence of its class
docstring), so listing entries imports none of them.
"""

from ridgeline.core import hookimpl

ENTRIES = (
    ("mlp", "mlp:MLPModel",
     "Fully connected ReLU network; ``widths`` (default 3 x 512) or ``width`` and ``depth``."),
    ("timm", "timm_models:TimmModel",
     "A timm architecture (``arch``) with ``num_classes`` outputs and ``in_chans`` from the "
     "input."),
    ("convnet", "convnet:ConvNetModel",
     "Conv-BN-ReLU blocks of ``widths`` channels (default 32, 64, 64) on C x H x W inputs; "
     "``batchnorm`` (default True); a max-pool after every ``pool_every`` blocks (0: never)."),
    ("cifar_resnet", "cifar:CifarResNetModel",
     "CIFAR ResNet-20/32/44/56/110 (``depth``) at ``width`` x 16-32-64 channels, ``norm`` "
     "batchnorm (default), layernorm or none; the Git Re-Basin / REPAIR benchmark family."),
    ("cifar_vgg", "cifar:CifarVGGModel",
     "CIFAR VGG-11/13/16/19 (``depth``) at ``width`` x 64..512 channels, ``norm`` batchnorm "
     "(default), layernorm or none; five 2x2 max-pools, then one linear head."),
    ("soft_trees", "soft_trees:SoftTreesModel",
     "Ensemble of soft (sigmoid-gated) binary trees: oblivious, plain, or decision lists."),
    ("smoe_mlp", "smoe_mlp:SMoEMLPModel",
     "MLP of sparse mixture-of-experts blocks (top-k router, stacked experts)."),
)
"""(name, "module:Class" inside this package, summary) of every entry."""


@hookimpl
def register_models(register):
    for name, target, summary in ENTRIES:
        register(name, f"{__name__}.{target}", summary)
