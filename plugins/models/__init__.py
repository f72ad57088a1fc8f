"""Model plugins: ``mlp``, ``timm``, ``convnet``, ``cifar_resnet`` and ``cifar_vgg``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.models.cifar import CifarResNetModel, CifarVGGModel
from ridgeline.plugins.models.convnet import ConvNetModel
from ridgeline.plugins.models.mlp import MLPModel
from ridgeline.plugins.models.timm_models import TimmModel


@hookimpl
def register_models(register):
    register("mlp", MLPModel)
    register("timm", TimmModel)
    register("convnet", ConvNetModel)
    register("cifar_resnet", CifarResNetModel)
    register("cifar_vgg", CifarVGGModel)
