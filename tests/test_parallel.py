"""Many runs at once (issue 17): worker processes against the sequential runner, submitit's
local executor with a pre-empted job, shards and their merge, concurrent writers of one
runs.json, and the command line's options."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from latentboost_lab import cli, launch, runstore
from latentboost_lab.experiments import (
    ExperimentConfig,
    Results,
    _open_results,
    parse_arms,
    parse_shard,
    planned_runs,
    run_experiment,
)
from latentboost_lab.results import merge_folders

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> ExperimentConfig:
    settings = dict(
        dataset="digits",
        arms=parse_arms("ce,latentboost"),
        seeds=(0,),
        epochs=2,
        n_train=300,
        n_test=200,
        batch_size=64,
        device="cpu",
    )
    settings.update(overrides)
    return ExperimentConfig(**settings)


def assert_same_runs(a: Results, b: Results) -> None:
    """Equal entries, bit for bit, but for the timing fields (runstore.TIMING)."""
    assert sorted(a.runs) == sorted(b.runs)
    for key in a.runs:
        assert runstore.same_run(a.runs[key], b.runs[key]), key
        assert a.runs[key]["test"] == b.runs[key]["test"]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The sequential runner's runs of the tiny comparison (one thread, as the workers)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("sequential")
        return run_experiment(tiny_config(), out, progress=False, report=False, command="seq")
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- worker processes


def test_two_worker_processes_give_the_sequential_runs(sequential, tmp_path):
    results = launch.run_jobs(
        tiny_config(), tmp_path, jobs=2, progress=False, report=False, command="jobs"
    )
    assert_same_runs(results, sequential)
    assert results.document["commands"] == ["jobs"]
    assert not list((tmp_path / "checkpoints").iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")
def test_a_device_that_is_not_here_is_named_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="devices: device is 'cuda:0' but CUDA is not available"):
        launch.run_jobs(tiny_config(), tmp_path / "x", jobs=2, devices="cpu,cuda:0")
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- submitit


class PreemptedOnce(launch.RunJob):
    """The run's job, pre-empted right after its first epoch's checkpoint: it sends itself the
    signal Slurm sends before pre-emption or the time limit (what submitit's LocalJob._interrupt
    sends), once."""

    def __call__(self):
        from latentboost_lab import training

        real_save = training.save_checkpoint
        marker = Path(self.out_dir) / "preempted_once"

        def save_then_preempt(path, state):
            real_save(path, state)
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGUSR2)

        training.save_checkpoint = save_then_preempt
        return super().__call__()


def test_local_launcher_requeues_a_preempted_job_to_the_same_history(
    sequential, tmp_path, monkeypatch
):
    submitit = pytest.importorskip("submitit")
    import cloudpickle

    # The job process cannot import this test module: its class travels by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(launch, "RunJob", PreemptedOnce)
    config = tiny_config(arms=parse_arms("latentboost"))
    jobs = launch.submit(config, tmp_path, launcher="local", command="local")
    assert len(jobs) == 1 and isinstance(jobs[0], submitit.local.local.LocalJob)
    assert jobs[0].result() == "latentboost/seed0"
    first_pid = int((tmp_path / "preempted_once").read_text())
    log = jobs[0].paths.stdout.read_text() + jobs[0].paths.stderr.read_text()
    assert "this job is preempted" in log and "Requeued job" in log, log
    assert first_pid > 0
    results = Results.load(tmp_path)
    key = "latentboost/seed0"
    assert runstore.same_run(results.runs[key], sequential.runs[key])
    assert not list((tmp_path / "checkpoints").iterdir())
    assert launch.submit(config, tmp_path, launcher="local") == []  # nothing left to do


def test_slurm_options_become_sbatch_lines(tmp_path):
    pytest.importorskip("submitit")
    from submitit.slurm.slurm import _make_sbatch_string

    parameters = launch.slurm_parameters(
        partition="gpu", time_min=90, gpus_per_job=2, cpus_per_job=8, mem_gb=16
    )
    text = _make_sbatch_string(command="python -m x", folder=tmp_path, **parameters)
    for line in (
        "--partition=gpu",
        "--time=90",
        "--gpus-per-node=2",
        "--cpus-per-task=8",
        "--mem=16384MB",
        "--signal=USR2@90",  # the warning before pre-emption or the time limit
    ):
        assert f"#SBATCH {line}" in text, line


# ----------------------------------------------------------------------------- shards and merge


def test_shards_split_the_runs_deterministically():
    config = tiny_config(arms=parse_arms("ce,magnet,center,latentboost"), seeds=(0, 1, 2))
    every = planned_runs(config)
    shards = [planned_runs(config, f"{k}/5") for k in range(1, 6)]
    assert sorted((s, a.name) for p in shards for s, a in p) == sorted(
        (s, a.name) for s, a in every
    )
    assert sum(len(p) for p in shards) == len(every) == 12
    assert shards[0] == every[0::5] == planned_runs(config, (1, 5))
    for text in ("3/2", "0/2", "1/0", "a/b", "1", "1/2/3"):
        with pytest.raises(ValueError, match="shard must be K/N"):
            parse_shard(text)


def test_shards_merge_into_the_sequential_runs(sequential, tmp_path, capsys):
    config = tiny_config()
    for k in (1, 2):
        run_experiment(config, tmp_path / f"s{k}", shard=f"{k}/2", progress=False, report=False)
        assert len(Results.load(tmp_path / f"s{k}").runs) == 1
    out = tmp_path / "merged"
    assert cli.main(["merge", str(out), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert "wrote" in capsys.readouterr().out and (out / "summary.md").stat().st_size > 0
    assert_same_runs(Results.load(out), sequential)
    # The same runs again (equal but for their timing): kept once.
    merged = merge_folders(out, [sequential.path.parent], "again")
    assert_same_runs(merged, sequential)
    assert merged.document["commands"][-1] == "again"


def fake_folder(path: Path, runs: dict, **overrides) -> Path:
    results = _open_results(tiny_config(**overrides), path, "made")
    results.runs.update(runs)
    path.mkdir(parents=True, exist_ok=True)
    results.save()
    return path


def fake_run(acc: float, seconds: float = 1.0) -> dict:
    return {"arm": "ce", "seed": 0, "test": {"acc": acc}, "seconds": seconds}


def test_merge_refuses_other_settings_and_differing_duplicates(tmp_path):
    a = fake_folder(tmp_path / "a", {"ce/seed0": fake_run(0.5)})
    b = fake_folder(tmp_path / "b", {"ce/seed0": fake_run(0.6)})
    c = fake_folder(tmp_path / "c", {"ce/seed1": fake_run(0.5)}, epochs=4)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"the run ce/seed0 is in .*a and in .*b with different"):
        merge_folders(out, [a, b], "m")
    with pytest.raises(ValueError, match=r"other settings .*epochs: 2 there, 4 now"):
        merge_folders(out, [a, c], "m")
    with pytest.raises(FileNotFoundError, match="no comparison has been run"):
        merge_folders(out, [a, tmp_path / "missing"], "m")
    assert not (out / "runs.json").exists()
    d = fake_folder(tmp_path / "d", {"ce/seed0": fake_run(0.5, seconds=9.0)})
    merged = merge_folders(out, [a, d], "m")
    assert merged.runs == {"ce/seed0": fake_run(0.5)}  # the first copy
    assert merged.document["commands"] == ["made", "made", "m"]


# ----------------------------------------------------------------------------- concurrent writers


def _write_runs(out: str, writer: int, n: int) -> None:
    # One stale copy for all its writes: the lock and the merge must keep the others' runs.
    results = Results.load(out)
    for i in range(n):
        results.runs[f"w{writer}/seed{i}"] = fake_run(writer + i / 10)
        results.save()


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_concurrent_writers_lose_no_run(tmp_path):
    import multiprocessing

    fake_folder(tmp_path, {})
    context = multiprocessing.get_context("fork")  # no torch import in the writers: fast
    writers = [context.Process(target=_write_runs, args=(str(tmp_path), w, 10)) for w in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    document = json.loads((tmp_path / "runs.json").read_text())
    assert sorted(document["runs"]) == sorted(f"w{w}/seed{i}" for w in range(4) for i in range(10))
    assert document["commands"] == ["made"]


def test_the_lock_file_fallback_serialises_writers_and_breaks_a_stale_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(runstore, "fcntl", None)
    fake_folder(tmp_path, {})
    stale = tmp_path / ".runs.json.lockfile"
    stale.write_text("")
    old = time.time() - runstore.STALE_SECONDS - 1
    os.utime(stale, (old, old))
    threads = [threading.Thread(target=_write_runs, args=(tmp_path, w, 5)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    runs = Results.load(tmp_path).runs
    assert sorted(runs) == sorted(f"w{w}/seed{i}" for w in range(4) for i in range(5))
    assert not stale.exists()


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--jobs", "0"], "argument --jobs: expected an integer >= 1"),
        (["--shard", "3/2"], "argument --shard: expected K/N with 1 <= K <= N, got '3/2'"),
        (["--shard", "two"], "argument --shard: expected K/N"),
        (["--devices", "cuda:0,gpu1"], "argument --devices: a comma-separated list of cpu"),
        (["--launcher", "pbs"], "argument --launcher: invalid choice: 'pbs'"),
        (["--time", "0"], "argument --time: expected an integer >= 1"),
    ],
)
def test_cli_rejects_bad_launch_options_by_name(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--devices", "cpu,cpu"], "--devices needs --jobs N"),
        (["--launcher", "slurm", "--devices", "cpu"], "--devices is for --jobs"),
        (["--partition", "gpu"], "--partition: Slurm options, for --launcher slurm only"),
        (["--jobs", "2", "--report-only"], "leave them out with --report-only"),
        (["--launcher", "local", "--jobs", "2"], "the local launcher starts every run at once"),
    ],
)
def test_cli_rejects_launch_options_that_cannot_work_together(args, message, tmp_path, capsys):
    assert cli.main(["compare", *args, "--out", str(tmp_path / "x")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_passes_the_launch_options_on(tmp_path, monkeypatch, capsys):
    calls = {}

    def fake(name, value):
        def record(config, out, **kwargs):
            calls[name] = (config, out, kwargs)
            return value

        return record

    sequential = Results({"runs": {}, "config": {}}, tmp_path / "runs.json")
    monkeypatch.setattr(launch, "run_jobs", fake("jobs", sequential))
    monkeypatch.setattr(Results, "markdown", lambda self, reference="ce": "table")
    common = ["compare", "--arms", "ce", "--out", str(tmp_path), "--device", "cpu"]
    assert cli.main([*common, "--jobs", "3", "--devices", "cpu", "--shard", "2/4"]) == 0
    _, out, kwargs = calls["jobs"]
    assert out == tmp_path
    assert kwargs["jobs"] == 3 and kwargs["devices"] == ["cpu"] and kwargs["shard"] == (2, 4)
    assert kwargs["threads"] == 1

    job = type("Job", (), {"job_id": "42"})()
    monkeypatch.setattr(launch, "submit", fake("submit", [job]))
    slurm = ["--launcher", "slurm", "--partition", "gpu", "--time", "90", "--gpus-per-job", "2"]
    assert cli.main([*common, *slurm, "--cpus-per-job", "8", "--mem-gb", "16", "--jobs", "5"]) == 0
    _, _, kwargs = calls["submit"]
    assert kwargs["launcher"] == "slurm" and kwargs["partition"] == "gpu"
    assert (kwargs["time_min"], kwargs["gpus_per_job"], kwargs["cpus_per_job"]) == (90, 2, 8)
    assert kwargs["mem_gb"] == 16 and kwargs["jobs"] == 5
    printed = capsys.readouterr().out
    assert "submitted 1 Slurm jobs (42)" in printed and "--report-only --out" in printed


def test_merge_has_help():
    with pytest.raises(SystemExit) as info:
        cli.main(["merge", "--help"])
    assert info.value.code == 0


def test_the_readmes_commands_parse_and_go_together():
    """README.md's "Many runs at once" commands: valid options, in combinations that work."""
    import shlex

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Many runs at once", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = [line.split("#")[0] for line in block.splitlines() if line.startswith("latent")]
    assert len(commands) == 5
    parser = cli.build_parser()
    for command in commands:
        if "..." in command:
            continue
        args = parser.parse_args(shlex.split(command)[1:])
        if args.command == "compare":
            cli._check_launch_options(args)


def test_saving_appends_each_invocations_log_once_even_when_the_lists_differ(tmp_path):
    # A runs.json whose "commands" and "environment" are not as long as each other (a command
    # removed by hand): every later save must add this invocation's entries once, not again
    # and again (the bug that filled a committed runs.json with 258 copies).
    folder = fake_folder(tmp_path / "a", {"ce/seed0": fake_run(0.5)})
    path = folder / "runs.json"
    document = json.loads(path.read_text())
    document["environment"].append({"date": "earlier"})  # 1 command, 2 environments
    path.write_text(json.dumps(document))
    results = Results.load(folder)
    results.document["commands"].append("again")
    results.document["environment"].append({"date": "now"})
    for seed in (1, 2, 3):
        results.runs[f"ce/seed{seed}"] = fake_run(0.5 + seed / 10)
        results.save()
    saved = json.loads(path.read_text())
    assert saved["commands"] == ["made", "again"]
    assert [e["date"] for e in saved["environment"]][1:] == ["earlier", "now"]
