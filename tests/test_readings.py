"""The readings of the paper (issue 13): where the distance term acts (the model's ``latent``)
and whether the variance takes part in the gradient (``variance_gradient``).

The gradient claims are checked against float64 oracles written here from the formulas: with a
differentiated batch variance, ``sum_i A_i`` is a constant and the alpha term has no gradient;
with a detached one, ``d/dz_j sum_i A_i = (z_j - mu_k) / sigma_k^2``, a pull towards the mean.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _oracles import random_batch

from latentboost_lab.data import DATASETS
from latentboost_lab.experiments import ExperimentConfig, parse_arms, run_experiment
from latentboost_lab.losses import LatentBoostLoss
from latentboost_lab.losses.magnet import check_cluster_ids, magnet_terms
from latentboost_lab.models import LATENTS, build_model

pytestmark = pytest.mark.usefixtures("one_thread")

# ------------------------------------------------------------------- the variance's gradient


def intra_terms(latent, labels, cluster_ids, per_cluster, variance_gradient):
    member, cluster_class = check_cluster_ids(labels, cluster_ids)
    return magnet_terms(
        latent,
        labels,
        member,
        cluster_class,
        per_cluster_variance=per_cluster,
        variance_gradient=variance_gradient,
    ).intra


@pytest.mark.parametrize("per_cluster", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_sum_of_intra_terms_is_constant_and_has_no_gradient(per_cluster, seed):
    """sigma^2 = sum d / (n - 1) makes sum_i A_i = (n - 1) / 2: with every hinge active, the
    alpha term cannot move the latent at all (Rippel's form, our default)."""
    latent, labels, cluster_ids = random_batch(40, 6, 3, 2, seed)
    latent.requires_grad_(True)
    intra = intra_terms(latent, labels, cluster_ids, per_cluster, variance_gradient=True)
    sizes = np.bincount(cluster_ids.numpy())
    sizes = sizes[sizes > 0]
    expected = (sizes - 1).sum() / 2 if per_cluster else (len(labels) - 1) / 2
    assert float(intra.detach().sum()) == pytest.approx(expected, rel=1e-12)
    (grad,) = torch.autograd.grad(intra.sum(), latent)
    assert float(grad.abs().max()) < 1e-12


@pytest.mark.parametrize("per_cluster", [False, True])
def test_detached_variance_pulls_each_sample_to_its_cluster_mean(per_cluster):
    latent, labels, cluster_ids = random_batch(30, 5, 3, 2, seed=7)
    latent.requires_grad_(True)
    intra = intra_terms(latent, labels, cluster_ids, per_cluster, variance_gradient=False)
    (grad,) = torch.autograd.grad(intra.sum(), latent)

    # The oracle: plain loops over clusters, in numpy.
    z, ids = latent.detach().numpy(), cluster_ids.numpy()
    n = len(z)
    centred = z - z.mean(axis=0)
    mu = {k: centred[ids == k].mean(axis=0) for k in set(ids)}
    d_own = np.array([((centred[i] - mu[ids[i]]) ** 2).sum() for i in range(n)])
    shared = d_own.sum() / (n - 1)
    expected = np.zeros_like(z)
    for i in range(n):
        members = ids == ids[i]
        var = d_own[members].sum() / (members.sum() - 1) if per_cluster else shared
        expected[i] = (centred[i] - mu[ids[i]]) / var  # d/dz_i sum_j d_j / (2 var)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-10, atol=1e-12)
    # Gradient descent moves each sample towards its own cluster's mean.
    towards = np.array([mu[ids[i]] - centred[i] for i in range(n)])
    assert (np.einsum("ij,ij->i", -grad.numpy(), towards) > 0).all()


def test_the_alpha_term_moves_the_latent_only_with_a_detached_variance():
    """Through the whole loss: a huge margin keeps every hinge active; beta = 0 leaves alpha * A
    alone. Its gradient vanishes in Rippel's form and is alpha / N times the oracle's pull in the
    detached one. The value of the loss is the same in both."""
    latent, labels, _ = random_batch(32, 4, 4, 1, seed=3)
    logits = torch.zeros(32, 4, dtype=torch.float64)
    values, grads = {}, {}
    for detached in (False, True):
        z = latent.clone().requires_grad_(True)
        loss = LatentBoostLoss(
            lam=1.0,
            margin=1e3,
            alpha=0.7,
            beta=0.0,
            pca_variance=None,
            variance="shared",
            variance_gradient=not detached,
        )
        values[detached] = loss(logits, z, labels, epoch=0)
        (grads[detached],) = torch.autograd.grad(values[detached], z)
    assert values[True].item() == pytest.approx(values[False].item(), rel=1e-12)
    assert float(grads[False].abs().max()) < 1e-12
    centred = latent - latent.mean(0)
    means = torch.stack([centred[labels == c].mean(0) for c in range(4)])
    shared = (centred - means[labels]).pow(2).sum() / 31
    torch.testing.assert_close(grads[True], 0.7 / 32 * (centred - means[labels]) / shared)


def test_variance_gradient_must_be_a_bool():
    with pytest.raises(TypeError, match="variance_gradient must be True or False"):
        LatentBoostLoss(variance_gradient="no")


# ------------------------------------------------------------------------- where L_dist acts

WIDTHS = {  # (model, data set) -> widths of embedding, pooled, features
    ("small_cnn", "digits"): (128, 512, 512),
    ("small_cnn", "fashion_mnist"): (128, 512, 6272),
    ("small_cnn", "cifar10"): (128, 512, 8192),
    ("vgg11_bn", "cifar10"): (512, 512, 2048),
    ("resnet18", "cifar10"): (512, 512, 8192),
}


@pytest.mark.parametrize(("model_name", "dataset"), list(WIDTHS))
def test_each_latent_has_its_width_and_the_same_logits(model_name, dataset):
    info = DATASETS[dataset]
    torch.manual_seed(0)
    model = build_model(model_name, info).eval()
    x = torch.randn(2, *info.image_shape)
    logits, latent = model(x)
    assert torch.allclose(model.classifier(latent), logits, atol=1e-6)
    for name, width in zip(LATENTS, WIDTHS[model_name, dataset], strict=True):
        model.latent = name
        other_logits, other = model(x)
        assert other.shape == (2, width) and model.latent_dim == width, name
        assert torch.equal(other_logits, logits), name
    model.latent = "features"
    feature_map = model.backbone[:-2](x)
    assert torch.equal(model(x)[1], feature_map.flatten(1))


def test_the_latent_choice_never_changes_the_weights():
    info = DATASETS["fashion_mnist"]
    states = []
    for latent in LATENTS:
        torch.manual_seed(3)
        model = build_model("small_cnn", info, latent=latent)
        model.backbone[1].eval()  # one BatchNorm in eval mode, the rest in train mode
        assert model.latent == latent
        assert model.latent_dim > 0  # its dry run, which measures the width, changes nothing
        assert not model.backbone[1].training and model.backbone[4].training
        states.append(model.state_dict())
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        assert all(torch.equal(state[k], states[0][k]) for k in state)


def test_resnet_keeps_torchvisions_parameter_names():
    model = build_model("resnet18", DATASETS["cifar10"])
    names = set(model.state_dict())
    assert {"backbone.conv1.weight", "backbone.layer4.1.bn2.running_var"} <= names


def test_a_backbone_of_its_own_keeps_the_embedding():
    from torch import nn

    from latentboost_lab.models import LatentClassifier

    model = LatentClassifier(nn.Flatten(), nn.Identity(), nn.Linear(64, 3), (1, 8, 8))
    assert model(torch.randn(2, 1, 8, 8))[1].shape == (2, 64)
    with pytest.raises(ValueError, match="needs a backbone that is an nn.Sequential"):
        model.latent = "features"


def test_a_wrong_latent_is_named():
    with pytest.raises(ValueError, match="latent must be one of"):
        build_model("small_cnn", DATASETS["digits"], latent="logits")
    model = build_model("small_cnn", DATASETS["digits"])
    with pytest.raises(ValueError, match="latent must be one of"):
        model.latent = "penultimate"


# --------------------------------------------------------------------------------- the runner


def test_parse_arms_builds_readings_and_their_combinations():
    arms = parse_arms("ce", readings=["features", "detached_variance+features"])
    assert [a.name for a in arms] == [
        "ce",
        "latentboost-features",
        "latentboost-detached_variance+features",
    ]
    assert arms[1].latent == "features" and arms[1].options == ()
    assert arms[2].latent == "features" and dict(arms[2].options) == {"variance_gradient": False}
    assert arms[0].to_dict() == {"name": "ce", "loss": "ce", "lam": None, "options": {}}
    assert arms[1].to_dict()["latent"] == "features"


@pytest.mark.parametrize(
    "readings, message",
    [
        (["sphere"], "readings must be one of"),
        (["features+pooled"], "more than one latent"),
        (["features+features"], "must not repeat a part"),
        (["features", "features"], "must not repeat an arm"),
    ],
)
def test_parse_arms_rejects_bad_readings_by_name(readings, message):
    with pytest.raises(ValueError, match=message):
        parse_arms("ce", readings=readings)


@pytest.fixture(scope="module")
def fashion_like_npz(tmp_path_factory):
    """300 + 100 random 28x28 grayscale images of 3 classes: on 28x28 the three latents differ
    in width (SmallCNN: embedding 128, pooled 512, feature map 6,272), unlike on 8x8 digits,
    where the 2x2 pooling of a 2x2 map makes the feature map and the pooled output one thing."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("npz") / "fashion_like.npz"
    means = rng.integers(40, 215, (3, 28, 28))

    def split(n):
        labels = np.arange(n) % 3
        images = np.clip(means[labels] + rng.normal(0, 40, (n, 28, 28)), 0, 255)
        return images.astype(np.uint8), labels

    x_train, y_train = split(300)
    x_test, y_test = split(100)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             classes=np.array(["a", "b", "c"]))  # fmt: skip
    return path


def test_a_features_arm_trains_on_the_feature_map(fashion_like_npz, tmp_path):
    config = ExperimentConfig(
        dataset=str(fashion_like_npz),
        arms=parse_arms("ce", readings=["features+detached_variance"]),
        seeds=(0,),
        epochs=1,
        batch_size=64,
        device="cpu",
    )
    results = run_experiment(config, tmp_path, progress=False, command="test", report=False)
    run = results.runs["latentboost-features+detached_variance/seed0"]
    history = run["history"]
    assert history["config"]["latent"] == "features"
    assert history["config"]["latent_dim"] == 128 * 7 * 7  # the width the loss saw
    assert history["config"]["variance_gradient"] is False
    assert results.runs["ce/seed0"]["history"]["config"]["latent_dim"] == 128
    saved = json.loads((tmp_path / "runs.json").read_text())
    assert saved["config"]["arms"][1]["latent"] == "features"


def test_every_arm_is_measured_at_the_embedding(fashion_like_npz):
    """The test metrics of an arm whose loss shaped the feature map are those of its embedding,
    the same space as cross-entropy's (silhouettes of different spaces would not pair)."""
    from latentboost_lab.data import load_dataset
    from latentboost_lab.experiments import _test_metrics

    data = load_dataset(str(fashion_like_npz), device="cpu")
    torch.manual_seed(0)
    model = build_model("small_cnn", data.info, latent="features").eval()
    loss = LatentBoostLoss()
    at_features = _test_metrics(model, data, loss, 0.95)
    assert model.latent == "features"  # put back
    model.latent = "embedding"
    assert at_features == _test_metrics(model, data, loss, 0.95)


def test_a_checkpoint_resumes_only_into_the_same_reading(fashion_like_npz, tmp_path):
    from latentboost_lab import fit
    from latentboost_lab.data import load_dataset

    data = load_dataset(str(fashion_like_npz), device="cpu")
    checkpoint = tmp_path / "run.pt"
    for latent, gradient in (("embedding", False), ("features", True)):
        torch.manual_seed(0)
        model = build_model("small_cnn", data.info, latent=latent)
        loss = LatentBoostLoss(variance_gradient=gradient)
        if not checkpoint.exists():
            fit(model, data, loss, epochs=1, checkpoint=checkpoint, progress=False)
            continue
        with pytest.raises(ValueError, match="was written for"):
            fit(model, data, loss, epochs=2, checkpoint=checkpoint, resume=True, progress=False)
    # a checkpoint written before the reading was recorded resumes as the default reading
    state = torch.load(checkpoint, weights_only=True)
    for key in ("latent", "variance_gradient"):
        del state["config"][key]
    torch.save(state, checkpoint)
    torch.manual_seed(0)
    model = build_model("small_cnn", data.info)
    fit(
        model, data, LatentBoostLoss(), epochs=2, checkpoint=checkpoint, resume=True, progress=False
    )


def test_the_paper_preset_is_a_reading_of_its_own():
    from latentboost_lab.recipes import PRESETS, READINGS, resolve_reading

    assert READINGS["paper"] == PRESETS["paper"]
    assert resolve_reading("paper") == ("features", {})
    assert resolve_reading("features+detached_variance") == (
        "features",
        {"variance_gradient": False},
    )
    assert resolve_reading("detached_variance") == ("embedding", {"variance_gradient": False})
    with pytest.raises(ValueError, match="more than one latent"):
        resolve_reading("paper+pooled")
    assert parse_arms("ce", readings=["paper"])[1].latent == "features"


def test_train_takes_a_reading(fashion_like_npz, tmp_path, capsys):
    from latentboost_lab import cli

    out = tmp_path / "run"
    args = ["train", "--loss", "latentboost", "--reading", "paper", "--epochs", "1"]
    data = ["--dataset", str(fashion_like_npz), "--no-progress"]
    assert cli.main([*args, *data, "--out", str(out)]) == 0
    history = json.loads(out.with_suffix(".json").read_text())
    assert history["config"]["latent"] == "features"
    assert history["config"]["latent_dim"] == 6272  # the 128 x 7 x 7 feature map
    assert cli.main(["train", "--loss", "ce", "--reading", "paper", "--out", str(out)]) == 1
    assert "--reading applies to --loss latentboost" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--loss", "latentboost", "--reading", "sphere"])
