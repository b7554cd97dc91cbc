"""The memory format (issue 20): fit trains each model in its fastest layout on the CPU unless
told otherwise, records it, gives the same run up to float rounding in either layout, and the
runner keeps a comparison in the layout its folder was started in."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from latentboost_lab import SmallCNN, fit, load_dataset, training
from latentboost_lab.experiments import ExperimentConfig, Results, parse_arms, run_experiment
from latentboost_lab.models import build_model, preferred_memory_format

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=400, val_size=0.2, seed=0)


def small_model(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, num_classes=10, latent_dim=16, image_size=8)


def conv_weight(model: nn.Module) -> torch.Tensor:
    """The last convolution's weight (the first one's, with one input channel, is both
    layouts at once)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)][-1]


def test_each_model_names_its_cpu_layout_and_gpus_keep_nchw():
    # The choice rests on benchmarks/bench_roofline.py's figures (speed is a benchmark's
    # business); built models and their names agree on it.
    info = load_dataset("digits").info
    assert build_model("small_cnn", info).cpu_memory_format == "channels_last"
    assert preferred_memory_format(small_model(), "cpu") == "channels_last"
    assert preferred_memory_format("resnet18", "cpu") == "channels_last"
    assert preferred_memory_format("vgg11_bn", "cpu") == "contiguous"
    assert preferred_memory_format(small_model(), "cuda") == "contiguous"
    assert preferred_memory_format(nn.Linear(2, 2), "cpu") == "contiguous"  # any module trains


@pytest.mark.parametrize(
    "channels_last, expected",
    [(None, "channels_last"), (True, "channels_last"), (False, "contiguous")],
)
def test_fit_trains_in_the_chosen_layout_and_records_it(digits, channels_last, expected):
    model = small_model()
    history = fit(model, digits, epochs=1, channels_last=channels_last, progress=False)
    assert history.config["memory_format"] == expected
    assert history.config["threads"] == torch.get_num_threads() == 1
    weight = conv_weight(model)
    assert weight.is_contiguous(memory_format=torch.channels_last) == (expected == "channels_last")


def test_a_model_without_a_preference_trains_in_nchw(digits):
    class Plain(nn.Module):  # a user's model: (logits, latent), no cpu_memory_format
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.head = nn.Linear(4 * 64, 10)

        def forward(self, x):
            latent = torch.relu(self.conv(x)).flatten(1)
            return self.head(latent), latent

    torch.manual_seed(0)
    model = Plain()
    history = fit(model, digits, epochs=1, progress=False)
    assert history.config["memory_format"] == "contiguous"
    assert model.conv.weight.is_contiguous()


def test_both_layouts_give_the_same_run_up_to_rounding(digits):
    """Same seed, same batches: the histories agree to float rounding (not bit for bit: the
    convolutions sum in another order), and the trained weights too."""
    runs = {}
    for flag in (False, True):
        model = small_model()
        history = fit(model, digits, epochs=2, batch_size=64, channels_last=flag, progress=False)
        runs[flag] = (history, {k: v.clone() for k, v in model.state_dict().items()})
    (a, wa), (b, wb) = runs[False], runs[True]
    for ea, eb in zip(a.epochs, b.epochs, strict=True):
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=1e-4)
        assert abs(ea["val_acc"] - eb["val_acc"]) <= 1 / 80  # at most one of 80 images
    for name in wa:
        if wa[name].is_floating_point():
            torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4, msg=name)


def test_a_bad_channels_last_is_named(digits):
    with pytest.raises(TypeError, match="channels_last must be True, False or None"):
        fit(small_model(), digits, epochs=1, channels_last="yes", progress=False)


# ----------------------------------------------------------------------------- the runner


def tiny_config(**overrides) -> ExperimentConfig:
    settings = dict(dataset="digits", arms=parse_arms("ce"), seeds=(0,), epochs=1, n_train=200,
                    n_test=100, batch_size=64, device="cpu")  # fmt: skip
    settings.update(overrides)
    return ExperimentConfig(**settings)


def spy_fit(monkeypatch) -> list:
    calls, real = [], training.fit

    def spy(*args, **kwargs):
        calls.append(kwargs.get("channels_last"))
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    return calls


def test_a_new_comparison_records_the_resolved_layout(tmp_path, monkeypatch):
    calls = spy_fit(monkeypatch)
    results = run_experiment(tiny_config(), tmp_path, progress=False, report=False)
    assert results.config["fixed"]["memory_format"] == "channels_last"
    assert calls == [True]
    run = results.runs["ce/seed0"]
    assert run["history"]["config"]["memory_format"] == "channels_last"
    explicit = tiny_config(memory_format="contiguous")
    with pytest.raises(ValueError, match="other settings .*memory_format"):
        run_experiment(explicit, tmp_path, progress=False)


def test_a_folder_from_before_the_setting_continues_in_nchw(tmp_path, monkeypatch):
    # runs.json written before the memory format was a setting has no such key: its runs were
    # NCHW, and "auto" keeps the rest of the comparison so.
    run_experiment(tiny_config(memory_format="contiguous"), tmp_path, progress=False, report=False)
    document = json.loads((tmp_path / "runs.json").read_text())
    assert "memory_format" not in document["config"]["fixed"]
    calls = spy_fit(monkeypatch)
    more = run_experiment(tiny_config(seeds=(1,)), tmp_path, progress=False, report=False)
    assert calls == [False]
    assert more.runs["ce/seed1"]["history"]["config"]["memory_format"] == "contiguous"
    assert "memory_format" not in Results.load(tmp_path).config["fixed"]
    # the time estimate reads the folder the same way (and trains as the comparison would)
    from latentboost_lab.estimate import estimate_time

    calls.clear()
    estimate_time(tiny_config(seeds=(2,)), epochs=1, out_dir=tmp_path, progress=False)
    assert calls == [False]


def test_the_command_line_passes_the_layout(tmp_path, monkeypatch):
    from latentboost_lab import cli

    calls = spy_fit(monkeypatch)
    out = tmp_path / "cmp"
    code = cli.main(["compare", "--dataset", "digits", "--arms", "ce", "--epochs", "1",
                     "--seeds", "1", "--n-train", "200", "--n-test", "100", "--device", "cpu",
                     "--memory-format", "contiguous", "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0 and calls == [False]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--memory-format", "nhwc"])


def test_a_resumed_run_keeps_its_checkpoints_format(digits, tmp_path):
    # A run started in NCHW (or before the format was recorded) continues in NCHW when resumed
    # with the default; asking for the other format is refused, naming both.
    ckpt = tmp_path / "run.pt"

    def stop_after_one(history, model):
        if len(history) == 1:
            raise KeyboardInterrupt

    fit(small_model(), digits, epochs=2, channels_last=False, checkpoint=ckpt,
        callbacks=[stop_after_one], progress=False)  # fmt: skip
    model = small_model()
    resumed = fit(model, digits, epochs=2, checkpoint=ckpt, resume=True, progress=False)
    assert resumed.config["memory_format"] == "contiguous" and len(resumed) == 2
    assert conv_weight(model).is_contiguous()
    with pytest.raises(ValueError, match="trained in contiguous"):
        fit(small_model(), digits, epochs=3, channels_last=True, checkpoint=ckpt, resume=True,
            progress=False)  # fmt: skip
