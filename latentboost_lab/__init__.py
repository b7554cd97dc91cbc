"""latentboost_lab: learn, run and question Latent Boost.

Latent Boost (Geissler, Zhou, Liu, Lukowicz, arXiv 2412.08515) trains a classifier with
``λ·L_dist + (1−λ)·L_CE``, where ``L_dist`` is an evolved Magnet loss (Rippel et al., ICLR 2016)
on the latent space, the input of the last linear layer.

The pieces, each a small module:
    data       load_dataset, from_datasets, TensorData, samplers (whole data set on the device)
    models     SmallCNN, vgg11_bn, resnet18: forward(x) -> (logits, latent)
    losses     MagnetLoss, LatentBoostLoss, CenterLoss
    schedules  the α/β/λ schedules of Latent Boost
    training   fit(model, data, loss) -> History
    metrics    accuracy, f1_score, silhouette_score, davies_bouldin_score, embed
    plots      latent-space, silhouette, confusion and history plots
    threads    the CPU thread settings (OpenMP's passive wait policy, set on import)
"""

# First, before anything imports torch: OpenMP reads its wait policy when torch starts, and
# latentboost_lab.threads sets it on import.
from . import threads  # noqa: F401

# isort: split
from .data import ClassBalancedSampler, ShuffledSampler, TensorData, from_datasets, load_dataset
from .device import seed_everything, select_device
from .models import SmallCNN, build_model, resnet18, vgg11_bn
from .training import CrossEntropyLoss, History, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "ClassBalancedSampler",
    "CrossEntropyLoss",
    "History",
    "ShuffledSampler",
    "SmallCNN",
    "TensorData",
    "build_model",
    "evaluate",
    "fit",
    "from_datasets",
    "load_dataset",
    "resnet18",
    "seed_everything",
    "select_device",
    "vgg11_bn",
]
