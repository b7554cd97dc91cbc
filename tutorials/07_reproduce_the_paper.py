# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Reproducing the paper: a fair comparison, several seeds, and an honest verdict
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/latentboost-lab/latentboost_lab/blob/main/notebooks/07_reproduce_the_paper.ipynb)
#
# The paper reports that Latent Boost beats cross-entropy by +2.56 / +0.64 / +1.38 points of
# accuracy on Fashion-MNIST / CIFAR-10 / CIFAR-100, with a higher silhouette, a smaller spread over
# runs and 13–21% fewer epochs. This notebook runs that comparison with the library's experiment
# runner and sets what *this* run measured beside those claims. **What you will learn**
#
# - what makes a comparison fair: the same data, initial weights, batches and budget for every arm;
# - why one seed is an anecdote, and how a paired test over seeds decides "better" or "no difference";
# - how λ, the weight of the distance term, moves accuracy and silhouette (a λ sweep);
# - how to run the full-scale comparison yourself (`latentboost-lab compare`), and where the
#   repository's own measured results are.
#
# *The outputs stored in this notebook were produced with the MEDIUM setting on a 2-core CPU
# (one torch thread).*

# %%
# Guarded install: a no-op when latentboost_lab is already installed (locally, in CI).
try:
    import latentboost_lab  # noqa: F401
except ImportError:  # e.g. on Colab
    get_ipython().run_line_magic(  # noqa: F821
        "pip", "install -q git+https://github.com/latentboost-lab/latentboost_lab"
    )

# %%
# %matplotlib inline
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from scipy.stats import t as student_t

from latentboost_lab.experiments import ExperimentConfig, Results, parse_arms, run_experiment
from latentboost_lab.report import figures, paired_test, summarise
from latentboost_lab.tutorial import environment_line, mode, pick, tutorial_dataset

plt.rcParams["figure.dpi"] = 80
print(environment_line())

# %% [markdown]
# ## Configuration
# `LATENTBOOST_MODE` chooses the setting. **QUICK** (`quick`, what the test suite runs;
# `LATENTBOOST_QUICK=1` still works): 1,000 Fashion-MNIST images, 3 epochs, two seeds, and a
# two-point λ sweep with one seed: about a minute on a quiet 2-core CPU. It shows the method, not the
# paper's numbers: runs this short cannot settle a difference of a few points. **MEDIUM** (`medium`,
# the outputs stored here): 5,000 images, 3 epochs, three seeds (the fewest the report gives a
# verdict for), the same two-point sweep: about five minutes of CPU time (the course guide has the
# measured times). **FULL** (`full`, the default): the whole data set, 30 epochs with early stopping, five seeds, a five-point λ sweep: for a
# GPU (its run time there has not been measured yet; `results/README.md` has the measured CPU epoch
# times, and section 5 shows how to measure yours before you start).

# %%
MODE = mode()
DATASET = tutorial_dataset("fashion_mnist")  # digits when QUICK finds no copy (it never downloads)
if DATASET == "digits":
    print(
        "No copy of Fashion-MNIST was found (set LATENTBOOST_DATA to its folder); FALLING BACK "
        "to scikit-learn's embedded 'digits'. The numbers below are then about digits."
    )
CONFIG = {
    "arms": "ce,magnet,center,latentboost",
    "seeds": pick((0, 1), (0, 1, 2, 3, 4), medium=(0, 1, 2)),
    "epochs": pick(3, 30),
    "patience": pick(None, 5),
    "n_train": pick(1000, None, medium=5000) if DATASET != "digits" else None,
    "n_test": pick(500, None, medium=2000) if DATASET != "digits" else None,
    "batch_size": pick(64, 128, medium=128),
    "sweep_lams": pick((0.5, 0.9), (0.1, 0.25, 0.5, 0.75, 0.9)),
    "sweep_seeds": pick((0,), (0, 1, 2)),
}
# QUICK and MEDIUM train into a fresh temporary folder (a rerun trains again); FULL keeps its runs
# in runs/ so that an interrupted comparison resumes
OUT = Path(tempfile.mkdtemp(prefix="lb07_")) if MODE != "full" else Path("runs/07_reproduce_the_paper")
print(MODE.upper(), DATASET, CONFIG, "->", OUT)

# %% [markdown]
# ## 1. The comparison
# `ExperimentConfig` holds everything the arms share; `parse_arms` names the arms. For each seed the
# runner draws the data subset and validation split with that seed, builds the model right after
# seeding (so every arm starts from the same weights) and trains with batches drawn from that seed.
# Only the loss differs, with two exceptions that belong to the Magnet method: it draws its own
# neighbourhood batches, and it trains the latent only, so its accuracy is that of its
# nearest-cluster classifier. Early stopping and the kept weights use the validation split; the test
# split is touched once, at the end.

# %%
config = ExperimentConfig(
    dataset=DATASET,
    arms=parse_arms(CONFIG["arms"]),
    seeds=CONFIG["seeds"],
    epochs=CONFIG["epochs"],
    patience=CONFIG["patience"],
    n_train=CONFIG["n_train"],
    n_test=CONFIG["n_test"],
    batch_size=CONFIG["batch_size"],
    device="auto",
)
started = time.perf_counter()
results = run_experiment(config, OUT / "comparison", progress=False, command="notebook 07")
print(f"{len(results.runs)} runs in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# The report is Markdown: one table per arm (mean ± std over seeds) and one against cross-entropy,
# with the 95% interval of each paired difference, its p-value, the paper's claim beside ours and a
# verdict that says "better" only when the difference is significant (p < 0.05).

# %%
display(Markdown(results.markdown()))

# %%
for name, figure in figures(results).items():
    if name == "accuracy_silhouette":
        display(figure)

# %% [markdown]
# ## 2. Why seeds matter: the paired test by hand
# A single seed can favour either arm. Pairing by seed removes what the arms share (the data
# subset, the initial weights, the batches), so the test looks at the differences only. With $n$
# seeds and per-seed differences $d_s$: mean $\bar d$, standard deviation $s$, standard error
# $s/\sqrt n$, $t = \bar d / (s/\sqrt n)$ with $n - 1$ degrees of freedom, the 95% interval
# $\bar d \pm t_{0.975,\,n-1}\, s/\sqrt n$ and the two-sided p-value $2\,P(T_{n-1} > |t|)$. By hand,
# then against the report's `paired_test`:

# %%
summary = summarise(results)
ce_acc = summary["arms"]["ce"]["metrics"]["acc"]["values"]
lb_acc = summary["arms"]["latentboost"]["metrics"]["acc"]["values"]
for seed, a, b in zip(config.seeds, lb_acc, ce_acc, strict=True):
    print(f"seed {seed}: Latent Boost {a:.4f}  cross-entropy {b:.4f}  difference {a - b:+.4f}")
differences = [a - b for a, b in zip(lb_acc, ce_acc, strict=True)]
n = len(differences)
mean_diff = sum(differences) / n
sd = math.sqrt(sum((d - mean_diff) ** 2 for d in differences) / (n - 1))
standard_error = sd / math.sqrt(n)
t_value = mean_diff / standard_error
quantile = student_t.ppf(0.975, n - 1)  # the t distribution's 97.5% point
p_value = 2 * student_t.sf(abs(t_value), n - 1)
print(f"mean difference {mean_diff:+.4f}, standard error {standard_error:.4f}, t = {t_value:.3f}, "
      f"t quantile {quantile:.2f}, 95% interval [{mean_diff - quantile * standard_error:+.4f}, "
      f"{mean_diff + quantile * standard_error:+.4f}], p = {p_value:.3f}")
by_hand = {"mean_diff": mean_diff, "t": t_value, "p": p_value}
library = paired_test(lb_acc, ce_acc)
print(f"paired_test: mean difference {library['mean_diff']:+.4f}, t = {library['t']:.3f}, "
      f"p = {library['p']:.3f}")
assert abs(library["t"] - t_value) < 1e-9 and abs(library["p"] - p_value) < 1e-9

# %% [markdown]
# With two seeds Student's t has one degree of freedom and a critical value of 12.7, so the 95%
# interval is wide unless the two differences happen to agree closely; and two points cannot
# estimate a spread at all, so a small p from two seeds that agree by chance means little. The
# report therefore gives no verdict below 3 seeds: it says "inconclusive", whatever p is (compare
# the p printed above). That is the honest answer for a QUICK run. The MEDIUM run stored here
# has three seeds: two degrees of freedom, a critical value of 4.30, and a verdict in the report
# above, which speaks only for this size and budget (5,000 images, 3 epochs). In plain words, that
# run says: Latent Boost's silhouette is higher than cross-entropy's (+0.055, p = 0.004), as in the
# committed runs; its accuracy difference (−0.77 points, 95% interval −5.5 to +4.0, p = 0.56) is
# not shown either way: the report's "no significant difference" means that, not that the two are
# equal. FULL uses five seeds.
#
# ## 3. A λ sweep
# λ is the share of the distance term: λ = 0 is cross-entropy, λ = 1 drops cross-entropy entirely
# (the softmax head then learns nothing useful). `parse_arms(..., lams=...)` makes one Latent Boost
# arm per λ; the report draws accuracy and silhouette against λ with cross-entropy as a line.

# %%
# The same settings as section 1, other arms and seeds: dataclasses.replace keeps the rest.
sweep_config = dataclasses.replace(
    config,
    arms=parse_arms("ce,latentboost", lams=CONFIG["sweep_lams"]),
    seeds=CONFIG["sweep_seeds"],
)
sweep = run_experiment(sweep_config, OUT / "lambda_sweep", progress=False, command="notebook 07")
sweep_summary = summarise(sweep)
for name, entry in sweep_summary["arms"].items():
    m = entry["metrics"]
    print(f"{name:22s} accuracy {m['acc']['mean']:.4f}  silhouette {m['silhouette']['mean']:.3f}")
display(figures(sweep)["lambda_sweep"])

# %% [markdown]
# ## 4. The repository's committed results
# The runs above are small. The repository holds larger ones, still far from the paper's scale: the
# whole Fashion-MNIST for 3 epochs, 10,000 Fashion-MNIST images trained to convergence over 5 seeds,
# and CIFAR-10's first 10,000 training images for 5 epochs (`results/README.md` lists them). In plain
# words, what they say so far: Latent Boost's **silhouette gain held on Fashion-MNIST** (not in the
# 5-epoch CIFAR-10 runs, where neither latent had separated its classes yet); its **accuracy gain
# was smaller than the paper's and not significant** (+0.68 points, p = 0.051, on the 5-seed
# convergence runs, against the paper's +2.56); and the paper's **13–21% fewer epochs did not
# show** (its best epoch came later on average, +6.4 epochs, p = 0.12). When this notebook runs
# inside a clone of the repository, their summary tables appear below.

# %%
here = Path.cwd().resolve()
committed = [p for p in (here, *here.parents[:2]) if (p / "results").is_dir()]
for folder in sorted((committed[0] / "results").glob("*/runs.json")) if committed else []:
    stored = Results.load(folder)
    if stored.runs:
        display(Markdown(stored.markdown().replace("# ", f"# results/{folder.parent.name}: ", 1)))
if not committed:
    print("No results/ folder next to this notebook (e.g. on Colab): see results/README.md online.")

# %% [markdown]
# ## 5. Running the full comparison yourself
# The same runner is a command. On a GPU, the paper-scale comparison on Fashion-MNIST is
#
# ```bash
# latentboost-lab compare --dataset fashion_mnist --model small_cnn \
#     --arms ce,magnet,center,latentboost --seeds 5 --epochs 30 --patience 5 \
#     --out results/fashion_mnist_full
# latentboost-lab compare --dataset fashion_mnist --arms ce,latentboost \
#     --lam 0.1,0.25,0.5,0.75,0.9 --seeds 3 --epochs 30 --patience 5 --out results/fmnist_lambda
# latentboost-lab compare --dataset cifar10 --model resnet18 --seeds 5 --epochs 100 \
#     --patience 10 --bf16 --out results/cifar10_resnet18
# ```
#
# Add `--estimate 2` to any of these first: it trains each arm for two epochs in exactly that
# setting, writes nothing, and prints the time per epoch, the most one run can take and the total
# for the comparison, measured on your machine.
#
# Runs already in `--out` are skipped, so an interrupted comparison continues where it stopped, and
# adding `--seeds 10` later trains only the new seeds. `--ablations no_pca,shared_variance,fixed_weights`
# adds Latent Boost with one of its parts switched off.
#
# ## Checks on this run
# What this notebook relies on, checked on the runs just made: every arm ran with every seed, on
# a test split of the same size; the report's paired test is the one computed by hand; every arm learned far above chance; and running the
# comparison again trains nothing (the runner resumes from its results file).

# %%
chance = 1 / 10
assert sorted(results.runs) == sorted(
    f"{a.name}/seed{s}" for a in config.arms for s in config.seeds
)
for name, entry in summary["arms"].items():
    assert entry["seeds"] == list(config.seeds), name
    assert entry["metrics"]["acc"]["mean"] > chance + 0.2, (name, entry["metrics"]["acc"])
assert len({run["test"]["n_test"] for run in results.runs.values()}) == 1
report_test = summary["arms"]["latentboost"]["vs_reference"]["acc"]
assert abs(report_test["mean_diff"] - by_hand["mean_diff"]) < 1e-12
before = time.perf_counter()
again = run_experiment(config, OUT / "comparison", progress=False, report=False)
assert again.runs.keys() == results.runs.keys() and time.perf_counter() - before < 10

# %% [markdown]
# ## Exercises
# 1. **More seeds.** Re-run section 1 with `seeds=(0, 1, 2, 3, 4)` in the same `OUT`: only the new
#    seeds train (three after QUICK, two after MEDIUM). Does the verdict on accuracy change? On
#    silhouette?
# 2. **Ablations.** Add `ablations=["no_pca", "fixed_weights"]` to `parse_arms`. Which part of Latent
#    Boost matters for the silhouette at this size? *Hint: compare each ablation with `latentboost`,
#    not with `ce`: call `summarise(results, reference="latentboost")`.*
# 3. **Epochs to reach cross-entropy.** The report counts the epochs each arm needs to reach
#    cross-entropy's best validation accuracy. With `patience=3` and 15 epochs, do you see the
#    paper's 13–21% fewer epochs?
# 4. **Another data set.** `dataset="cifar10"` (with a CIFAR-10 copy under `LATENTBOOST_DATA`).

# %%
# TODO (exercise 1)
# config5 = dataclasses.replace(config, seeds=(0, 1, 2, 3, 4))
# results5 = run_experiment(config5, OUT / "comparison", progress=False)
# display(Markdown(results5.markdown()))

# %% [markdown]
# **Questions.** Why must the test split be touched only once, after model selection on the
# validation split? If a method wins on silhouette but not on accuracy, what has it shown about
# interpretability, and what has it not? How many seeds would you need to detect a +0.64-point gain
# (the paper's CIFAR-10 claim) when the spread over seeds is 0.3 points?
#
# ## Summary
# - A fair comparison changes one thing only: the loss. Same data, weights, batches, budget, seeds.
# - Report mean ± std over seeds and a paired test. A difference inside the noise is "not shown",
#   which is not "no difference": absence of evidence is not evidence of absence. Fewer than 3 seeds
#   give no verdict.
# - `latentboost-lab compare` runs the paper's comparison at any size and resumes where it stopped;
#   `results/README.md` holds what the repository measured, claim by claim.
