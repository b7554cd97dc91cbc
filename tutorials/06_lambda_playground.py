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
# # 06 · The λ playground
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/latentboost-lab/latentboost_lab/blob/main/notebooks/06_lambda_playground.ipynb)
#
# Latent Boost trains with $L = \lambda L_{dist} + (1-\lambda) L_{CE}$. Here you steer $\lambda$ (and the
# α/β schedules, and PCA) *while* a model trains: the run goes on in a background thread, every
# optimisation step reads the sliders, and the figure is redrawn every few steps, so you see the
# loss parts, the accuracy, the silhouette and the test latents answer a move of the slider within
# the same run. **What you will learn**
#
# - how λ trades the distance term against cross-entropy, step by step;
# - what the α (intra-cluster, decaying) and β (inter-cluster, growing) weights do;
# - how a notebook can train and still listen to its sliders (a thread), and how the loss is kept
#   from seeing half of a change (one snapshot of the settings per step).
#
# *The outputs stored in this notebook were produced with the QUICK setting on a 2-core CPU. The
# interactive panel itself only appears when you run the notebook (GitHub does not run widgets); the
# static figure further down shows the same view.*

# %%
# Guarded install: a no-op when latentboost_lab is already installed (locally, in CI).
try:
    import latentboost_lab  # noqa: F401
except ImportError:  # e.g. on Colab
    get_ipython().run_line_magic(  # noqa: F821
        "pip", "install -q git+https://github.com/latentboost-lab/latentboost_lab"
    )

# %%
import matplotlib.pyplot as plt

from latentboost_lab import seed_everything
from latentboost_lab.tutorial import environment_line, load_tutorial_data, mode, pick
from latentboost_lab.widgets import WHY_NOT_MID_EPOCH, LambdaPlayground

plt.rcParams["figure.dpi"] = 80
print(environment_line())

# %% [markdown]
# ## Configuration
# One cell holds every setting; the environment variable `LATENTBOOST_MODE` chooses one of three.
# **QUICK** (`quick`, what the test suite runs and the outputs stored here; `LATENTBOOST_QUICK=1`
# still works): 1,000 training images for the playground (8 steps of 128 per epoch) and 4 scripted
# epochs. **MEDIUM** (`medium`): 5,000 images (40 steps per epoch), enough for the curves to show
# more than the first steps (the whole notebook: 105 s wall with one thread on the shared 2-core
# machine, load average 6; `LATENTBOOST_MODE=medium jupyter nbconvert --execute`). **FULL** (`full`, the default when
# nothing is set): the whole training set per epoch, for a GPU (run time not measured yet).

# %%
MODE = mode()
CONFIG = {"n_train": pick(1500, None, medium=6000), "n_test": pick(1000, None, medium=2000),
          "playground_n_train": pick(1000, None, medium=5000), "seed": 0}
print(MODE.upper(), CONFIG)
seed_everything(CONFIG["seed"])
data = load_tutorial_data(n_train=CONFIG["n_train"], n_test=CONFIG["n_test"], seed=CONFIG["seed"])

# %% [markdown]
# ## The controls
# - **λ**: the share of the distance term. 0 is plain cross-entropy (notebook 01); 1 is the distance
#   term alone, with an untrained softmax head (like Magnet, notebook 02). The slider sends its value
#   only when you release it (`continuous_update=False`).
# - **α₀, k_α**: the intra-cluster weight $\alpha(E) = \max(\alpha_{min}, \alpha_0 e^{-k_\alpha E})$
#   (pull to the cluster mean, strong early, weaker later; with σ² differentiated, as by default,
#   the pull acts only through which hinges are active: notebook 04, "A catch");
#   **β₀, k_β**: the inter-cluster weight $\beta(E) = \min(\beta_{max}, \beta_0 + k_\beta E)$ (push from
#   impostors, growing). The paper lets α fall and β grow but gives no formula; these forms are the
#   library's (`latentboost_lab.schedules`). $E$ counts the playground's epochs across runs.
# - **PCA**: project each batch onto the components that keep 95% of its variance before the distance
#   term (notebook 03).
# - These six are read at **every step**, also while a run is going.
# - **training images** (a stratified subset of the training split) and **N epochs** are read when
#   a run starts; they are greyed out while it lasts.
# - **Train N epochs** starts a run that continues from the current weights (and Adam's state);
#   **Stop** ends it when the epoch in progress ends; **Reset** starts over.
#
# The first panel shows the loss parts step by step; accuracy and silhouette are measured after each
# epoch. The 2-D view is a PCA of 1,000 test latents fitted once, after the first epoch, then kept:
# points move on fixed axes. A dashed line marks each change of λ where it took effect, to the step
# (the axis counts epochs trained: 2.5 is half-way through the third epoch).

# %%
playground = LambdaPlayground(data, lam=0.75, n_train=CONFIG["playground_n_train"],
                              seed=CONFIG["seed"])
playground

# %% [markdown]
# ## How the panel listens while it trains
# The kernel executes one message at a time. If *Train* trained inside its callback, a slider move
# would wait in the kernel's queue until the whole run had ended. So *Train* only starts a thread
# that calls `fit` and returns at once: the kernel is free again, and each slider message is
# handled as soon as it arrives, while the thread trains.
#
# Two threads now touch the settings, so the playground keeps them where a step cannot see half of
# a change. A slider's callback does not edit the settings in use: it builds a new, immutable
# `Settings` (λ, α₀, k_α, β₀, k_β, PCA) and swaps it in under a lock (`LiveSettings`). At the start
# of each step, the training thread takes the current one once (`LiveLoss`) and computes the step's
# loss from it alone. A step therefore uses either the old setting or the new one, and the λ it
# records is the λ its gradient was computed with. Only the training thread touches the model, the
# optimizer and the history while a run lasts.
#
# *Stop* lets the epoch in progress finish (it is evaluated and recorded like the others), so no
# trained epoch is lost and none is recorded half-done; `playground.stop(now=True)` stops at the next
# step instead and discards the unfinished epoch whole (weights and Adam's state go back to the end
# of the last completed epoch). The kernel's own interrupt button stops the cell being run, not the
# training thread: use *Stop*.

# %%
print(WHY_NOT_MID_EPOCH.replace("<i>", "").replace("</i>", ""))

# %% [markdown]
# ## Driving the playground from code
# The same panel, scripted (this is also how the test suite exercises it). `train(2)` is the
# blocking form of the button: two epochs at λ = 0.75, waiting for them. Then `start(2)` starts a
# two-epoch run and returns at once; we wait until it has made 5 steps, move λ to 0.25 *during the
# run*, as a person dragging the slider would, and wait for the run to end. In your own session,
# use the sliders and the buttons above instead.

# %%
playground.train(2)
playground.start(2)
playground.wait(steps=5)
playground.lam.value = 0.25  # while the second run trains
playground.wait()
run_steps = [s for s in playground.steps if s["epoch"] >= 2]
changed_at = [s["lam"] for s in run_steps].index(0.25)
print(f"second run: {len(run_steps)} steps, λ = 0.75 for the first {changed_at}, then 0.25")
print("\n".join(playground.history_lines()))

# %% [markdown]
# The same view as the live panel, as a static figure (this one is saved in the notebook):

# %%
from IPython.display import Image

Image(playground.png())

# %% [markdown]
# ## Checks on this run
# Four whole epochs; the second run changed λ part-way, at the step after the slider moved, and the
# mark sits there; every step's loss is $\lambda L_{dist} + (1-\lambda) L_{CE}$ with the λ it
# recorded (one setting per step); α fell and β grew with the playground's epoch count (not each
# run's); the model learned far above chance.

# %%
history = playground.history
steps_per_epoch = history.last["steps"]
assert len(history) == 4 and [r["steps"] for r in history.epochs] == [steps_per_epoch] * 4
assert history["lam"][:2] == [0.75, 0.75] and history.last["lam_end"] == 0.25
assert 5 <= changed_at < len(run_steps)  # after the 5 steps we waited for, within the run
marks = playground.lambda_marks()
assert marks == [(0.0, "λ=0.75"), (round(2 + changed_at / steps_per_epoch, 6), "λ=0.25")], marks
for s in playground.steps:
    assert abs(s["train_loss"] - (s["lam"] * s["dist"] + (1 - s["lam"]) * s["ce"])) < 1e-4
assert history["alpha"][3] < history["alpha"][0] and history["beta"][3] > history["beta"][0]
assert history.last["test_acc"] > 1 / data.num_classes + 0.3, history.last["test_acc"]

# %% [markdown]
# ## Exercises
# 1. **λ = 1.** Reset, set λ to 1 and train 3 epochs. What happens to the test accuracy of the softmax
#    head, and to the silhouette? *Hint: with λ = 1 nothing trains the head (compare notebook 02).*
# 2. **λ = 0, then 0.75, mid-run.** Reset, set λ to 0, set N to 6 and press *Train*; during the
#    third epoch drag λ to 0.75. Which loss part moves first at the mark, and does the silhouette
#    jump after it? *Hint: cross-entropy alone already separates; the distance term compacts.*
# 3. **No decay.** Set k_α = 0 and k_β = 0 (fixed weights) and compare with the defaults over 6
#    epochs (notebook 04 does this systematically).
# 4. **PCA off.** Untick PCA during a run: how many dimensions does the distance term now see
#    (`playground.steps[-1]["pca_k"]`), and does the step time change (`history["train_seconds"]`)?

# %%
# TODO (exercise 2): playground.reset(); playground.lam.value = 0.0; playground.start(6); ...

# %% [markdown]
# **Questions.** Why is the 2-D PCA fitted once and kept, rather than refitted each epoch? What would
# a refitted projection hide? Why would a loss that read `self.lam` twice in one step (once for the
# weights, once for the record) be wrong while a slider moves, and how does the snapshot avoid it?
#
# ## Summary
# - λ weighs geometry (the distance term) against decision (cross-entropy); you can change it while
#   the model trains and see both move from the next step on.
# - The playground is ordinary code: one `fit` call per run in a background thread, with a loss
#   wrapper that reads one snapshot of the settings per step, and `fit`'s per-epoch callback for
#   `embed`, `silhouette_score` and the redraw.
