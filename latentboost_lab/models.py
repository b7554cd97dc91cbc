"""Classifiers that expose their latent space.

Every model here is a :class:`LatentClassifier`: ``forward(x)`` returns ``(logits, latent)``.
``latent`` is the space the distance term of Latent Boost (or Magnet, Center loss) shapes; its
width is ``model.latent_dim``. Which tensor it is, is the model's ``latent`` setting (ours; the
paper says "feature extractor -> flattened latent vector -> PCA", not which layer):

- ``"embedding"`` (default): the input of the final linear layer ``model.classifier``, so that
  ``logits == model.classifier(latent)``; 128 wide for SmallCNN (configurable).
- ``"pooled"``: the backbone's pooled, flattened output that feeds the embedding (512 for every
  model here; for VGG-11 and ResNet-18 without ``latent_dim`` it *is* the embedding).
- ``"features"``: the last convolutional feature map before the final pooling, flattened
  (SmallCNN: 128x7x7 = 6,272 at 28x28 and 128x8x8 = 8,192 at 32x32; VGG-11: 512x2x2 = 2,048 at
  32x32; ResNet-18: 512x4x4 = 8,192 at 32x32). Its batch PCA keeps about as many components as
  the paper reports (issue 13, ``results/README.md``).

The setting changes what is returned, never the weights: the same seed builds the same network
for every setting, so comparisons between them start from the same initial weights.

- :class:`SmallCNN`: three conv blocks, for 8x8 and 28x28 grayscale and 32x32 colour images;
  fast on a laptop CPU.
- :func:`vgg11_bn` and :func:`resnet18`: torchvision's definitions adapted to small images
  (ResNet: 3x3 stride-1 stem and no max-pool, as is usual for CIFAR; VGG: the last max-pool
  dropped and a global average pool, so 28x28 and 32x32 both fit).

Memory format (issue 20): each model names the layout its training step runs fastest in on the
CPU, ``model.cpu_memory_format``, and :func:`preferred_memory_format` reads it; ``fit`` trains
in that layout unless told otherwise (``channels_last=True/False``). Measured by
``benchmarks/bench_roofline.py`` (results in ``benchmarks/README.md``): ``channels_last`` made
SmallCNN's step faster in every comparison, ResNet-18's never slower, and VGG-11-BN's went
both ways, so SmallCNN and ResNet-18 prefer ``"channels_last"`` and VGG-11-BN keeps
``"contiguous"`` (NCHW). Not measured on a GPU here: on a GPU every model keeps NCHW unless
asked.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ._checks import check_choice, check_int

#: Where the latent is taken (see the module docstring).
LATENTS = ("embedding", "pooled", "features")

#: The memory formats a model can train in: torch's default NCHW and NHWC.
MEMORY_FORMATS = ("contiguous", "channels_last")
#: Each named model's fastest layout on the CPU (``benchmarks/bench_roofline.py``): on the quiet
#: machine SmallCNN's step took 0.71-0.72 of NCHW's time in channels_last, ResNet-18's 0.78-0.89,
#: VGG-11-BN's 1.03-1.10 (slower in all 4); two busy-machine runs gave 0.44-0.84, 0.64-1.00 and
#: 0.83-1.12.
CPU_MEMORY_FORMAT = {
    "small_cnn": "channels_last",
    "vgg11_bn": "contiguous",
    "resnet18": "channels_last",
}

__all__ = [
    "CPU_MEMORY_FORMAT",
    "LATENTS",
    "MEMORY_FORMATS",
    "MODELS",
    "LatentClassifier",
    "SmallCNN",
    "build_model",
    "preferred_memory_format",
    "resnet18",
    "vgg11_bn",
]


class LatentClassifier(nn.Module):
    """``backbone`` (images -> flat features) -> ``embedding`` (features -> latent) ->
    ``classifier`` (latent -> logits). Subclasses only build the three parts.

    ``latent="pooled"`` and ``"features"`` need a ``backbone`` that is an ``nn.Sequential``
    whose last two modules pool and flatten (as in every model here), so that the feature map
    before them can be returned; any other backbone works with the default ``"embedding"``.
    ``cpu_memory_format``: the layout ``fit`` trains this model in on the CPU by default
    (``"contiguous"`` or ``"channels_last"``; see :func:`preferred_memory_format`).
    """

    def __init__(
        self,
        backbone: nn.Sequential,
        embedding: nn.Module,
        classifier: nn.Linear,
        image_shape: tuple[int, int, int],
        min_size: int = 1,
        latent: str = "embedding",
        cpu_memory_format: str = "contiguous",
    ):
        super().__init__()
        self.backbone, self.embedding, self.classifier = backbone, embedding, classifier
        self.image_shape = tuple(image_shape)
        self.min_size = min_size
        self.cpu_memory_format = check_choice(
            "cpu_memory_format", cpu_memory_format, MEMORY_FORMATS
        )
        self._widths: dict[str, int] = {}
        self.latent = latent

    @property
    def latent(self) -> str:
        """Which tensor ``forward`` returns as the latent: one of :data:`LATENTS`."""
        return self._latent

    @latent.setter
    def latent(self, value: str) -> None:
        value = check_choice("latent", value, LATENTS)
        if value != "embedding" and not (
            isinstance(self.backbone, nn.Sequential)
            and len(self.backbone) > 2
            and isinstance(self.backbone[-1], nn.Flatten)
        ):
            raise ValueError(
                f"latent={value!r} needs a backbone that is an nn.Sequential ending in a pooling "
                f"and nn.Flatten, got {type(self.backbone).__name__}; use latent='embedding'"
            )
        self._latent = value

    @property
    def latent_dim(self) -> int:
        """Width of the latent that ``forward`` returns (for ``"embedding"``, the classifier's
        input width)."""
        if self.latent == "embedding":
            return self.classifier.in_features
        if self.latent not in self._widths:  # one dry run on a blank image, no state changed
            modes = [(module, module.training) for module in self.modules()]
            param = next(self.parameters())
            blank = torch.zeros(1, *self.image_shape, dtype=param.dtype, device=param.device)
            try:
                self.eval()  # BatchNorm uses (and keeps) its running statistics
                with torch.no_grad():
                    feature_map = self.backbone[:-2](blank)
                    self._widths["features"] = feature_map[0].numel()
                    self._widths["pooled"] = self.backbone[-2:](feature_map).shape[1]
            finally:
                for module, training in modes:  # each module's own mode, as it was
                    module.training = training
        return self._widths[self.latent]

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error for images the model cannot take (instead of a shape error deep in a conv)."""
        channels = self.image_shape[0]
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(
                f"{type(self).__name__} expects images of shape (batch, {channels}, height, width), "
                f"got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"{type(self).__name__} needs images of at least {self.min_size}x{self.min_size} "
                f"pixels, got {x.shape[-2]}x{x.shape[-1]}; for small images use SmallCNN"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"images must be a normalised floating-point tensor (see TensorData.normalize), got {x.dtype}"
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.compiler.is_compiling():
            self.check_input(x)
        if self.latent == "embedding":
            latent = self.embedding(self.backbone(x))
            return self.classifier(latent), latent
        # The same computation, with the feature map kept on the way.
        feature_map = self.backbone[:-2](x)
        pooled = self.backbone[-2:](feature_map)
        logits = self.classifier(self.embedding(pooled))
        return logits, (pooled if self.latent == "pooled" else feature_map.flatten(1))


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(LatentClassifier):
    """conv32-pool-conv64-pool-conv128, adaptive pool to 2x2, a linear+ReLU embedding of width
    ``latent_dim`` (the latent), and the linear classifier. Works for 8x8, 28x28 and 32x32."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        latent_dim: int = 128,
        image_size: int = 28,
    ):
        check_int("in_channels", in_channels, 1)
        check_int("num_classes", num_classes, 2)
        check_int("latent_dim", latent_dim, 1)
        backbone = nn.Sequential(
            *_conv_block(in_channels, 32),
            nn.MaxPool2d(2),
            *_conv_block(32, 64),
            nn.MaxPool2d(2),
            *_conv_block(64, 128),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        embedding = nn.Sequential(nn.Linear(128 * 4, latent_dim), nn.ReLU(inplace=True))
        super().__init__(
            backbone,
            embedding,
            nn.Linear(latent_dim, num_classes),
            (in_channels, image_size, image_size),
            min_size=4,
            cpu_memory_format=CPU_MEMORY_FORMAT["small_cnn"],
        )


def _embedding(features: int, latent_dim: int | None) -> tuple[nn.Module, int]:
    """Identity when the native width is kept; otherwise a linear+ReLU projection to latent_dim."""
    if latent_dim is None or latent_dim == features:
        return nn.Identity(), features
    check_int("latent_dim", latent_dim, 1)
    return nn.Sequential(nn.Linear(features, latent_dim), nn.ReLU(inplace=True)), latent_dim


def vgg11_bn(
    in_channels: int = 3, num_classes: int = 10, latent_dim: int | None = None, image_size: int = 32
) -> LatentClassifier:
    """torchvision's VGG-11 with batch norm, for 28x28 or 32x32 images: the convolutional
    features without their last max-pool, a global average pool (512 features), and the
    linear classifier. The latent is the 512 pooled features (or a projection of them to
    ``latent_dim``)."""
    from torchvision.models import vgg11_bn as tv_vgg11_bn

    features = tv_vgg11_bn(weights=None).features
    if in_channels != 3:
        features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    features = nn.Sequential(*list(features)[:-1])  # drop the last max-pool: 32 -> 2, 28 -> 1
    embedding, width = _embedding(512, latent_dim)
    backbone = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return LatentClassifier(
        backbone,
        embedding,
        nn.Linear(width, num_classes),
        (in_channels, image_size, image_size),
        min_size=16,
        cpu_memory_format=CPU_MEMORY_FORMAT["vgg11_bn"],
    )


def resnet18(
    in_channels: int = 3, num_classes: int = 10, latent_dim: int | None = None, image_size: int = 32
) -> LatentClassifier:
    """torchvision's ResNet-18 adapted to small images: a 3x3 stride-1 stem and no max-pool
    (the usual CIFAR variant). The latent is the 512 globally pooled features (or a projection
    of them to ``latent_dim``)."""
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    # ResNet.forward up to its fc, as a Sequential under torchvision's names (the state_dict
    # keys stay torchvision's): it ends in the 512 pooled, flattened features.
    names = ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "layer4", "avgpool")
    backbone = nn.Sequential(OrderedDict([(n, getattr(net, n)) for n in names]))
    backbone.add_module("flatten", nn.Flatten())
    embedding, width = _embedding(512, latent_dim)
    return LatentClassifier(
        backbone,
        embedding,
        nn.Linear(width, num_classes),
        (in_channels, image_size, image_size),
        min_size=8,
        cpu_memory_format=CPU_MEMORY_FORMAT["resnet18"],
    )


def preferred_memory_format(model: nn.Module | str, device: torch.device | str) -> str:
    """The memory format ``fit`` trains ``model`` (a module, or a name of :data:`MODELS`) in on
    ``device`` when not told: the model's ``cpu_memory_format`` on the CPU (``"contiguous"`` for
    a model without one: any ``nn.Module`` trains), and ``"contiguous"`` (NCHW) on every other
    device."""
    if torch.device(device).type != "cpu":
        return "contiguous"
    if isinstance(model, str):
        return CPU_MEMORY_FORMAT.get(model, "contiguous")
    found = getattr(model, "cpu_memory_format", "contiguous")
    return found if found in MEMORY_FORMATS else "contiguous"


MODELS = {"small_cnn": SmallCNN, "vgg11_bn": vgg11_bn, "resnet18": resnet18}


def build_model(
    name: str, info, latent_dim: int | None = None, latent: str = "embedding"
) -> LatentClassifier:
    """The model ``name`` (small_cnn, vgg11_bn, resnet18) sized for data set ``info``
    (a :class:`~latentboost_lab.data.DatasetInfo`). ``latent_dim=None`` keeps the model's
    native width of the embedding (128 for SmallCNN, 512 for the others). ``latent``: which
    tensor ``forward`` returns as the latent (see the module docstring); the weights do not
    depend on it."""
    check_choice("latent", latent, LATENTS)
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    if not (hasattr(info, "image_shape") and hasattr(info, "num_classes")):
        raise TypeError(
            "info must be a DatasetInfo (e.g. data.info of a loaded data set), "
            f"got {type(info).__name__} {info!r}"
        )
    channels, height, width = info.image_shape
    kwargs = {"in_channels": channels, "num_classes": info.num_classes, "image_size": height}
    if name == "small_cnn":
        model = SmallCNN(latent_dim=128 if latent_dim is None else latent_dim, **kwargs)
    else:
        model = MODELS[name](latent_dim=latent_dim, **kwargs)
    if min(height, width) < model.min_size:
        raise ValueError(
            f"model {name!r} needs images of at least {model.min_size}x{model.min_size} pixels; "
            f"{info.name} has {height}x{width}: use model='small_cnn'"
        )
    model.latent = latent
    return model
