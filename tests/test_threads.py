"""The CPU thread default (issue 20): importing latentboost_lab sets OpenMP's passive wait policy
before torch starts (so that 2 threads do not collapse beside another process), leaves a user's
own choice alone, and every entry point (the package, the command line, the notebooks) gets it.
The speed itself is measured by benchmarks/bench_threads.py, not here.

GNU OpenMP (libgomp, torch's on Linux) prints the policy it read when ``OMP_DISPLAY_ENV=VERBOSE``:
its spin count is 0 under PASSIVE, 300,000 by default and 30,000,000,000 under ACTIVE."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def spin_count(code: str, **env) -> str:
    """The spin count OpenMP starts with in a fresh Python running ``code``."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environment.update(OMP_DISPLAY_ENV="VERBOSE", **env)
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, check=True, cwd=ROOT)  # fmt: skip
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    if found is None:
        pytest.skip("torch's OpenMP here is not GNU libgomp: it does not print its spin count")
    return found.group(1)


def test_importing_the_package_first_makes_threads_wait_passively():
    assert spin_count("import torch") == "300000"  # the default: spin, then sleep
    assert spin_count("import latentboost_lab, torch; torch.ones(9).sum()") == "0"


def test_the_command_line_gets_it():
    assert spin_count("from latentboost_lab.cli import main; main(['--version'])") == "0"


def test_a_users_own_policy_stands():
    code = "import latentboost_lab, os; assert os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'"
    assert spin_count(code, OMP_WAIT_POLICY="ACTIVE") == "30000000000"


def test_thread_settings_say_what_is_in_effect():
    code = ("import json, latentboost_lab; from latentboost_lab.threads import thread_settings;"
            " print(json.dumps(thread_settings()))")  # fmt: skip
    late = ("import torch, json, latentboost_lab; from latentboost_lab.threads import "
            "thread_settings; print(json.dumps(thread_settings()))")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = lambda c: subprocess.run([sys.executable, "-c", c], env=env, capture_output=True,  # noqa: E731
                                   text=True, check=True).stdout  # fmt: skip
    assert '"omp_wait_policy": "PASSIVE"' in run(code)
    assert '"omp_wait_policy": "default"' in run(late)  # torch started first: too late


def test_every_notebook_imports_the_package_before_torch():
    # The notebooks' first cell imports latentboost_lab (to offer the install on Colab) before
    # any cell imports torch: their kernels get the passive policy.
    twins = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    assert len(twins) >= 8
    for twin in twins:
        order = []
        for node in ast.walk(ast.parse(twin.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for name in names:
                    top = name.split(".")[0]
                    if top in ("torch", "latentboost_lab"):
                        order.append((node.lineno, top))
        assert min(order)[1] == "latentboost_lab", twin.name


def test_runs_record_the_threads_and_the_policy():
    import torch

    from latentboost_lab import SmallCNN, fit, load_dataset
    from latentboost_lab.provenance import provenance

    data = load_dataset("digits", n_train=200, val_size=0.2)
    torch.manual_seed(0)
    model = SmallCNN(in_channels=1, num_classes=10, latent_dim=8, image_size=8)
    history = fit(model, data, epochs=1, progress=False, eval_test=False)
    assert history.config["threads"] == torch.get_num_threads()
    # the policy changes the speed only: it is part of the environment, not of the run
    assert provenance()["omp_wait_policy"] in ("PASSIVE", "ACTIVE", "default")
    assert "omp_wait_policy" not in history.config
