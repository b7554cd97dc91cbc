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
# α/β schedules, and PCA) *while* a model trains, a few epochs at a time, and watch what happens to
# the loss parts, the accuracy, the silhouette and the test latents. **What you will learn**
#
# - how λ trades the distance term against cross-entropy, epoch by epoch;
# - what the α (intra-cluster, decaying) and β (inter-cluster, growing) weights do;
# - why a running notebook cell cannot react to a slider in the middle of an epoch.
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
from latentboost_lab.tutorial import environment_line, load_tutorial_data, pick, quick_mode
from latentboost_lab.widgets import WHY_NOT_MID_EPOCH, LambdaPlayground

plt.rcParams["figure.dpi"] = 80
print(environment_line())

# %% [markdown]
# ## Configuration
# **QUICK** (`LATENTBOOST_QUICK=1`, what the test suite runs): 1,000 training images, 3 scripted
# epochs. **FULL**: the whole training set per epoch, for a GPU (run time not measured yet).

# %%
QUICK = quick_mode()
CONFIG = {"n_train": pick(1500, None), "n_test": pick(1000, None), "playground_n_train": pick(1000, None),
          "seed": 0}
print("QUICK" if QUICK else "FULL", CONFIG)
seed_everything(CONFIG["seed"])
data = load_tutorial_data(CONFIG["n_train"], None, quick_n_test=CONFIG["n_test"],
                          full_n_test=None, seed=CONFIG["seed"])

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
#   library's (`latentboost_lab.schedules`).
# - **PCA**: project each batch onto the components that keep 95% of its variance before the distance
#   term (notebook 03).
# - **training images**: a stratified subset of the training split, redrawn at each epoch's size.
# - **Train N epochs** continues from the current weights (and Adam's state); **Reset** starts over.
#
# The 2-D view is a PCA of the test latents fitted once, after the first epoch, then kept: points move
# on fixed axes. A dotted line on the curves marks each change of λ.

# %%
playground = LambdaPlayground(data, lam=0.75, n_train=CONFIG["playground_n_train"],
                              seed=CONFIG["seed"])
playground

# %% [markdown]
# ## Why nothing happens mid-epoch
# The kernel executes one thing at a time. While the *Train* callback runs, a slider move is a
# message waiting in the kernel's queue; it is delivered when the callback returns. The playground
# reads the controls at the start of each epoch, so a change made during a run applies to the next
# click, never half-way through an epoch (each point on the curves belongs to one setting).

# %%
print(WHY_NOT_MID_EPOCH.replace("<i>", "").replace("</i>", ""))

# %% [markdown]
# ## Driving the playground from code
# The same panel, scripted (this is also how the test suite exercises its callbacks): two epochs at
# λ = 0.75, then λ lowered to 0.25 for one more epoch. In your own session, use the sliders and the
# button above instead.

# %%
playground.epochs.value = 2
playground.train_button.click()
playground.lam.value = 0.25
playground.epochs.value = 1
playground.train_button.click()
for r in playground.history.epochs:
    print(f"epoch {r['epoch']}: λ={r['lam']:.2f} α={r['alpha']:.3f} β={r['beta']:.3f} "
          f"CE {r['ce']:.3f} L_dist {r['dist']:.3f} test acc {r['test_acc']:.3f} "
          f"silhouette {r['test_silhouette']:.3f} PCA k {r['pca_k']:.1f}")

# %% [markdown]
# The same view as the live panel, as a static figure (this one is saved in the notebook):

# %%
playground.figure()
plt.show()

# %% [markdown]
# ## Checks on this run
# The clicks trained the epochs asked for, with the λ the slider held at each click; the λ change is
# marked; α fell and β grew with the epoch count of the playground (not of each click); the model
# learned far above chance.

# %%
history = playground.history
assert len(history) == 3
assert history["lam"] == [0.75, 0.75, 0.25]
assert playground.lambda_marks() == [(0, "λ=0.75"), (2, "λ=0.25")]
assert history["alpha"][2] < history["alpha"][0] and history["beta"][2] > history["beta"][0]
assert history.last["test_acc"] > 1 / data.num_classes + 0.3, history.last["test_acc"]

# %% [markdown]
# ## Exercises
# 1. **λ = 1.** Reset, set λ to 1 and train 3 epochs. What happens to the test accuracy of the softmax
#    head, and to the silhouette? *Hint: with λ = 1 nothing trains the head (compare notebook 02).*
# 2. **λ = 0, then 0.75.** Train 3 epochs with λ = 0, then 3 with 0.75. Does the silhouette jump at the
#    mark? *Hint: cross-entropy alone already separates; the distance term compacts.*
# 3. **No decay.** Set k_α = 0 and k_β = 0 (fixed weights) and compare with the defaults over 6
#    epochs (notebook 04 does this systematically).
# 4. **PCA off.** Untick PCA: does the step time change? (`history["train_seconds"]`)

# %%
# TODO (exercise 2): playground.reset(); playground.lam.value = 0.0; playground.train(3); ...

# %% [markdown]
# **Questions.** Why is the 2-D PCA fitted once and kept, rather than refitted each epoch? What would
# a refitted projection hide?
#
# ## Summary
# - λ weighs geometry (the distance term) against decision (cross-entropy); you can change it between
#   epochs and see both move.
# - The playground is ordinary code: `fit` for one epoch at a time with a shared optimizer, `embed`
#   and `silhouette_score` after each, and a fixed PCA for the picture.
