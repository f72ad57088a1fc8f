"""Model plugins: ``mlp``, ``timm``, ``convnet``, ``cifar_resnet``, ``cifar_vgg``, ``soft_trees``
and ``smoe_mlp``."""

from ridgeline.core import hookimpl
from ridgeline.plugins.models.cifar import CifarResNetModel, CifarVGGModel
from ridgeline.plugins.models.convnet import ConvNetModel
from ridgeline.plugins.models.mlp import MLPModel
from ridgeline.plugins.models.smoe_mlp import SMoEMLPModel
from ridgeline.plugins.models.soft_trees import SoftTreesModel
from ridgeline.plugins.models.timm_models import TimmModel


@hookimpl
def register_models(register):
    register("mlp", MLPModel)
    register("timm", TimmModel)
    register("convnet", ConvNetModel)
    register("soft_trees", SoftTreesModel)
    register("smoe_mlp", SMoEMLPModel)
    register("cifar_resnet", CifarResNetModel)
    register("cifar_vgg", CifarVGGModel)
