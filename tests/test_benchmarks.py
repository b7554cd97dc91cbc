"""The performance suite (benchmarks/bench_suite.py) runs and writes complete, well-formed
results, and the single benchmarks it reuses keep their own command lines. No speed is asserted:
timings on a shared CI machine say nothing; the suite is for a person to run and read."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from latentboost_lab.provenance import provenance

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.usefixtures("one_thread")


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(BENCHMARKS))  # bench_suite imports its siblings by name
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the whole suite (a few seconds), shared by the checks below."""
    out = tmp_path_factory.mktemp("suite")
    suite = _load("bench_suite")
    assert suite.main(["--smoke", "--random-images", "--out", str(out)]) == 0
    return (
        suite,
        json.loads((out / "bench_suite.json").read_text()),
        (out / "bench_suite.md").read_text(),
    )


def _positive_seconds(values, count):
    assert len(values) == count
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values)


def test_json_records_the_run_and_the_machine(smoke):
    _, result, _ = smoke
    assert "python benchmarks/bench_suite.py --smoke --random-images --out" in result["command"]
    env = result["environment"]
    for moment in ("load_start", "load_end"):
        assert "load average" in env[moment]["uptime"]
        assert env[moment]["load_1min"] >= 0
    where = env["provenance"]  # the same record as runs.json's environment
    assert set(where) >= set(provenance())
    assert where["torch_threads"] == 1  # the default --threads
    assert where["device"] == "cpu"
    for package in ("torch", "scikit_learn", "torchvision", "latentboost_lab"):
        assert where[package]
    assert set(result["sections"]) == {"steps", "silhouette", "loader"}


def test_steps_cover_every_arm_batch_size_and_width(smoke):
    suite, result, _ = smoke
    settings, steps = result["settings"], result["sections"]["steps"]
    configs = {(r["batch_size"], r["latent"]) for r in steps["runs"]}
    expected = {(b, settings["latent"]) for b in settings["batch_sizes"]}
    expected |= {(settings["batch_size"], w) for w in settings["latent_widths"]}
    assert configs == expected
    head = steps["runs"][0]
    assert (head["batch_size"], head["latent"]) == (settings["batch_size"], settings["latent"])
    for run in steps["runs"]:
        assert set(run["times_s"]) == {*suite.ARMS, suite.PCA_OFF, "pca"}
        for values in run["times_s"].values():
            _positive_seconds(values, settings["reps"])
        assert run["ratio_to_ce"]["ce"]["ratio_of_medians"] == 1.0
        for name in ("magnet", "center", "latentboost", suite.PCA_OFF):
            ratio = run["ratio_to_ce"][name]["ratio_of_medians"]
            assert ratio == pytest.approx(run["median_s"][name] / run["median_s"]["ce"])
        share = run["pca"]["call_share_of_step"]
        assert share == pytest.approx(run["median_s"]["pca"] / run["median_s"]["latentboost"])


def test_silhouette_agrees_with_scikit_learn_at_every_size(smoke):
    _, result, _ = smoke
    settings, sil = result["settings"], result["sections"]["silhouette"]
    assert [r["n"] for r in sil["sizes"]] == settings["silhouette_sizes"]
    assert [r["dim"] for r in sil["widths"]] == settings["silhouette_widths"]
    for row in sil["sizes"] + sil["widths"]:
        _positive_seconds(row["torch_times_s"], row["repeats"])
        _positive_seconds(row["sklearn_times_s"], row["repeats"])
        assert row["abs_diff"] < 1e-5  # the same score, not just a fast one
        assert row["speedup"] == pytest.approx(row["sklearn_s"] / row["torch_s"])


def test_loader_times_both_loaders_over_the_same_epochs(smoke):
    _, result, _ = smoke
    loader = result["sections"]["loader"]
    assert loader["images"] == result["settings"]["loader_images"]
    assert "random" in loader["source"]  # --random-images
    for values in loader["times_s"].values():
        _positive_seconds(values, loader["repeats"])
    assert loader["speedup"] == pytest.approx(
        loader["median_s"]["tv_data"] / loader["median_s"]["ours_data"]
    )


def test_markdown_has_every_section_and_well_formed_tables(smoke):
    suite, result, text = smoke
    assert result["command"] in text
    for heading in ("## (a)", "## (b)", "## (c)", "## (d)", "## (e)"):
        assert heading in text
    for name in (*suite.ARMS, suite.PCA_OFF):
        assert f"| {name} |" in text
    assert "Load average (1 min)" in text
    # every table row has as many cells as its header
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) == 5
    for table in tables:
        assert set(table[1]) <= set("|-: ")  # the separator line
        cells = {row.count("|") for row in table}
        assert len(cells) == 1, table
        assert len(table) > 2


def test_summarize_rewrites_the_same_markdown_from_the_json(smoke, tmp_path, capsys):
    suite, result, text = smoke
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(result))
    assert suite.main(["--summarize", str(saved), "--out", str(tmp_path / "md")]) == 0
    assert (tmp_path / "md" / "bench_suite.md").read_text() == text
    broken = tmp_path / "broken.json"
    broken.write_text('{"command": "x"}')
    with pytest.raises(SystemExit):
        suite.main(["--summarize", str(broken)])
    assert "--summarize" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "tpu"], "--device"),
        (["--sections", "steps,gpu"], "--sections"),
        (["--batch-sizes", "64,0"], "--batch-sizes"),
        (["--threads", "0"], "--threads"),
        ([], "--out is required"),
    ],
)
def test_bad_options_name_the_option(argv, message, tmp_path, capsys):
    suite = _load("bench_suite")
    if "--out is required" not in message:
        argv = [*argv, "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        suite.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_single_benchmarks_keep_their_command_lines(monkeypatch, capsys):
    monkeypatch.delenv("LATENTBOOST_DATA", raising=False)  # random images: fast and offline
    loss_step = _load("bench_loss_step")
    monkeypatch.setattr(
        sys, "argv", ["bench_loss_step.py", "--reps", "1", "--warmup", "0", "--batch-size", "8"]
    )
    loss_step.main()
    out = capsys.readouterr().out
    for arm in ("cross-entropy", "LatentBoost, PCA on", "Magnet"):
        assert arm in out
    silhouette = _load("bench_silhouette")
    assert silhouette.main(["--sizes", "200", "--repeats", "1", "--no-memory"]) == 0
    assert "| 200 x 128 | 1 |" in capsys.readouterr().out


def test_roofline_flop_count_equals_the_hand_count():
    """FlopCounterMode, as bench_roofline counts a step, against the multiply-adds written out
    (2 FLOPs each) for conv(2->3, 3x3, pad 1) on 4 x 2 x 5 x 5, ReLU, linear(75 -> 7)."""
    import torch

    roofline = _load("bench_roofline")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 5 * 5, 7),
    )
    x, y = torch.randn(4, 2, 5, 5), torch.tensor([0, 1, 2, 6])
    n, c_in, c_out, k, pixels, features, classes = 4, 2, 3, 3, 5 * 5, 75, 7
    conv = 2 * n * c_out * pixels * c_in * k * k  # forward; the weight gradient costs the same
    linear = 2 * n * features * classes  # forward; the input and weight gradients the same each
    # the input needs no gradient, so the conv's backward computes the weight gradient only
    expected = {"convolution": conv, "convolution_backward": conv, "addmm": linear,
                "mm": 2 * linear}  # fmt: skip
    counted = roofline.step_flops(net, x, y)
    assert counted["by_op"] == expected
    assert counted["total"] == 2 * conv + 3 * linear == 34200
    assert all(p.grad is None for p in net.parameters())  # the count leaves no gradients
    # the work of a step grows with the batch, exactly
    small = roofline.step_flops(net, x[:2], y[:2])["total"]
    assert 2 * small == counted["total"]


def test_roofline_runs_end_to_end_and_writes_the_readme_fields(tmp_path):
    roofline = _load("bench_roofline")
    argv = ["--out", str(tmp_path), "--models", "small_cnn", "--batch-sizes", "4,8",
            "--threads", "1", "--reps", "1", "--warmup", "0", "--matmul-size", "64"]  # fmt: skip
    assert roofline.main(argv) == 0
    result = json.loads((tmp_path / "bench_roofline.json").read_text())
    assert result["command"] == "python benchmarks/bench_roofline.py " + " ".join(argv)
    for moment in ("load_start", "load_end"):
        assert "load average" in result["environment"][moment]["uptime"]
    assert result["environment"]["provenance"]["torch_threads"] == 1
    rows = result["rows"]
    assert [(r["model"], r["batch_size"], r["threads"]) for r in rows] == [
        ("small_cnn", 4, 1), ("small_cnn", 8, 1)
    ]  # fmt: skip
    assert rows[1]["flops"]["total"] == 2 * rows[0]["flops"]["total"] > 0
    for row in rows:
        for values in row["times_s"].values():
            _positive_seconds(values, 1)
        peak = 2 * 64**3 / row["times_s"]["matmul"][0] / 1e9
        assert row["peak_gflops"] == pytest.approx(peak)
        for name in ("nchw", "channels_last"):
            fmt = row["formats"][name]
            assert fmt["median_s"] == row["times_s"][name][0]
            assert fmt["gflops"] == pytest.approx(row["flops"]["total"] / fmt["median_s"] / 1e9)
            assert fmt["ratio_to_peak"] == pytest.approx(fmt["gflops"] / peak)
        assert row["channels_last_over_nchw"]["ratio_of_medians"] == pytest.approx(
            row["formats"]["channels_last"]["median_s"] / row["formats"]["nchw"]["median_s"]
        )
    text = (tmp_path / "bench_roofline.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows)
    assert len({line.count("|") for line in table}) == 1  # every row as wide as the header
    assert "| SmallCNN | 4 | 1 | 1 |" in text
    assert "Load average (1 min)" in text


@pytest.mark.parametrize(
    ("argv", "option"),
    [(["--models", "alexnet"], "--models"), (["--batch-sizes", "128,0"], "--batch-sizes"),
     (["--threads", "two"], "--threads"), (["--warmup", "-1"], "--warmup")],
)  # fmt: skip
def test_roofline_bad_options_name_the_option(argv, option, tmp_path, capsys):
    roofline = _load("bench_roofline")
    with pytest.raises(SystemExit) as exit_info:
        roofline.main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err


def test_threads_benchmark_runs_each_setting_in_its_own_process(tmp_path):
    threads = _load("bench_threads")
    argv = ["--out", str(tmp_path), "--rounds", "1", "--steps", "1", "--warmup", "0",
            "--scenarios", "neighbour", "--losses", "cross-entropy"]  # fmt: skip
    assert threads.main(argv) == 0
    result = json.loads((tmp_path / "bench_threads.json").read_text())
    assert result["settings"]["2 threads, OMP_WAIT_POLICY=PASSIVE"]["env"] == {
        "OMP_WAIT_POLICY": "PASSIVE"
    }
    for values in result["seconds"]["neighbour"]["cross-entropy"].values():
        _positive_seconds(values, 1)
    text = (tmp_path / "bench_threads.md").read_text()
    assert "| neighbour | cross-entropy |" in text and "2 threads / 1" in text


def test_epoch_benchmark_trains_one_epoch_per_setting(tmp_path, fashion_root):
    epoch = _load("bench_epoch")
    argv = ["--out", str(tmp_path), "--rounds", "1", "--settings", "contiguous:1,channels_last:1",
            "--losses", "ce", "--n-train", "300", "--root", str(fashion_root)]  # fmt: skip
    assert epoch.main(argv) == 0
    result = json.loads((tmp_path / "bench_epoch.json").read_text())
    runs = result["epochs"]["ce"]
    assert [r["memory_format"] for r in runs["contiguous:1"] + runs["channels_last:1"]] == [
        "contiguous", "channels_last"
    ]  # fmt: skip
    assert all(r["threads"] == 1 and r["train_seconds"] > 0 for v in runs.values() for r in v)
    assert "| ce | channels_last:1 |" in (tmp_path / "bench_epoch.md").read_text()
