"""Models: every one returns (logits, latent) with latent the input of the last linear layer."""

from __future__ import annotations

import pytest
import torch

from latentboost_lab.data import DATASETS
from latentboost_lab.models import SmallCNN, build_model, resnet18, vgg11_bn


@pytest.mark.parametrize(
    ("model_name", "dataset", "width"),
    [
        ("small_cnn", "digits", 128),
        ("small_cnn", "fashion_mnist", 128),
        ("small_cnn", "cifar10", 128),
        ("vgg11_bn", "fashion_mnist", 512),
        ("vgg11_bn", "cifar10", 512),
        ("resnet18", "fashion_mnist", 512),
        ("resnet18", "cifar10", 512),
    ],
)
def test_logits_and_latent(model_name, dataset, width):
    info = DATASETS[dataset]
    torch.manual_seed(0)
    model = build_model(model_name, info).eval()
    x = torch.randn(3, *info.image_shape)
    logits, latent = model(x)
    assert logits.shape == (3, 10) and latent.shape == (3, width) and model.latent_dim == width
    assert torch.allclose(model.classifier(latent), logits, atol=1e-6)


@pytest.mark.parametrize("factory", [SmallCNN, vgg11_bn, resnet18])
def test_latent_width_is_configurable_and_gradients_flow(factory):
    kwargs = {"in_channels": 3, "num_classes": 7, "latent_dim": 24, "image_size": 32}
    model = factory(**kwargs)
    logits, latent = model(torch.randn(2, 3, 32, 32))
    assert latent.shape == (2, 24) and logits.shape == (2, 7)
    (logits.sum() + latent.sum()).backward()
    first = next(model.parameters())
    assert first.grad is not None and torch.isfinite(first.grad).all()


def test_wrong_images_give_clear_errors():
    model = SmallCNN(in_channels=1)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 1, height, width\)"):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="expects images"):
        model(torch.randn(28, 28))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 16x16"):
        vgg11_bn(in_channels=1)(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="use model='small_cnn'"):
        build_model("vgg11_bn", DATASETS["digits"])
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("vgg16", DATASETS["digits"])
    with pytest.raises(ValueError, match="latent_dim"):
        SmallCNN(latent_dim=0)
