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
# # 04 · Dynamic α and β: pull first, push later
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/latentboost-lab/latentboost_lab/blob/main/notebooks/04_dynamic_alpha_beta.ipynb)
#
# Latent Boost weights the two halves of its Magnet-style term: α the intra-cluster term (pull each
# latent to its cluster mean) and β the inter-cluster term (push it away from impostor clusters),
# and lets them change over training. **What you will learn**
#
# - the α and β schedules and what they mean for the loss;
# - training with fixed versus dynamic weights on the same data and seed;
# - how the intra-class spread and the distance between classes evolve, epoch by epoch.
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
import matplotlib.pyplot as plt
import torch

from latentboost_lab import SmallCNN, fit, seed_everything
from latentboost_lab.losses import LatentBoostLoss
from latentboost_lab.metrics import embed, silhouette_score
from latentboost_lab.schedules import alpha_schedule, beta_schedule
from latentboost_lab.tutorial import (
    class_spread,
    environment_line,
    load_tutorial_data,
    mode,
    pick,
)

plt.rcParams["figure.dpi"] = 80
print(environment_line())

# %% [markdown]
# ## Configuration
# `LATENTBOOST_MODE` chooses the setting. **QUICK** (`quick`, what the test suite runs;
# `LATENTBOOST_QUICK=1` still works): two 3-epoch trainings on 1,500 images, about a minute on a
# quiet 2-core CPU. **MEDIUM** (`medium`, the outputs stored here): two 6-epoch trainings on
# 10,000 images, a few minutes. **FULL** (`full`, the default): the whole data set and 30 epochs,
# for a GPU (run time not measured yet).

# %%
MODE = mode()
CONFIG = {"n_train": pick(1500, None, medium=10_000), "n_test": pick(1000, None, medium=2000),
          "epochs": pick(3, 30, medium=6), "lr": 1e-3, "seed": 0, "lam": 0.75}
print(MODE.upper(), CONFIG)

# %% [markdown]
# ## The schedules
# With $A_i = d_{i,k_i}/2\sigma_{k_i}^2$ (distance to its own cluster) and
# $B_i = \log\sum_{k\,\text{impostor}} e^{-d_{ik}/2\sigma_k^2}$, each sample's loss is
# $\ell_i = [\alpha(E) A_i + \beta(E) B_i + m]_+$ at epoch $E$. The paper lets α decay exponentially and
# β grow linearly but does not publish the formulas; the library's forms (its own choice) are
# $\alpha(E) = \max(\alpha_{min}, \alpha_0 e^{-k_\alpha E})$ and $\beta(E) = \min(\beta_{max}, \beta_0 + k_\beta E)$,
# defaults $\alpha_0 = 1, k_\alpha = 0.05, \alpha_{min} = 0.1$, $\beta_0 = 0.5, k_\beta = 0.05, \beta_{max} = 2$.
# That is the paper's story: early on the loss mostly *pulls* points together, later it mostly
# *pushes* classes apart. How much of it our default loss can act out is the next section's
# question.

# %%
epochs_axis = list(range(60))
alphas = [alpha_schedule(e) for e in epochs_axis]
betas = [beta_schedule(e) for e in epochs_axis]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs_axis, alphas, label="α(E): intra-cluster weight")
ax.plot(epochs_axis, betas, label="β(E): inter-cluster weight")
ax.axvline(CONFIG["epochs"] - 1, color="grey", linestyle=":", label="last epoch of this run")
ax.set_xlabel("epoch E")
ax.legend()
plt.show()

# %% [markdown]
# ## A catch: what α can move depends on where σ² comes from
# σ² is estimated from the batch itself, $\sigma^2 = \sum_i d_{i,k_i}/(N-1)$, and by default the gradient
# flows through it too (neither Rippel et al. nor the Latent Boost paper say whether it should).
# Then $\sum_i A_i = \sum_i d_{i,k_i}/2\sigma^2 = (N-1)/2$ for *every* batch: a constant. While all hinges are active, the α term has no gradient at all, so α
# can act only through which hinges are active. With `variance_gradient=False` σ² is a detached
# scale, and α·A pulls each latent towards its cluster mean. The paper does not say which it means;
# on a random batch (per-cluster variances, the library's default, give $\sum_k (n_k-1)/2 = (N-C)/2$
# over C clusters the same way, as long as no variance sits at its floor):

# %%
g = torch.Generator().manual_seed(0)
toy_labels = torch.arange(64) % 4
toy_latent = (3 * torch.randn(4, 8, generator=g)[toy_labels] + torch.randn(64, 8, generator=g)
              ).double()
for variance_gradient in (True, False):
    z = toy_latent.clone().requires_grad_(True)
    # λ = 1, β = 0 and a huge margin: every hinge active, only α·A left
    probe = LatentBoostLoss(lam=1.0, alpha=1.0, beta=0.0, margin=1e3, pca_variance=None,
                            variance="shared", variance_gradient=variance_gradient)
    intra = probe.distance_loss(z, toy_labels, epoch=0)[0] - 1e3  # = A_i
    probe(torch.zeros(64, 4, dtype=torch.float64), z, toy_labels, 0).backward()
    print(f"variance_gradient={variance_gradient}: sum of A_i = {intra.sum().item():.4f} "
          f"((N-1)/2 = {63 / 2}), largest gradient on a latent {z.grad.abs().max().item():.2e}")
    if variance_gradient:
        assert abs(intra.sum().item() - 63 / 2) < 1e-9 and z.grad.abs().max() < 1e-12
    else:
        assert z.grad.abs().max() > 1e-4

# %% [markdown]
# The runs below use the default (σ² differentiated), so α's schedule moves them only through the
# active hinges. The experiment runner compares both readings (`--readings detached_variance`).
#
# QUICK (3 epochs) and MEDIUM (6 epochs, the run stored here) cover only the first epochs, where the
# weights have barely moved (by epoch 5, α = e^{-0.25} ≈ 0.78 and β = 0.75): the contrast with fixed
# weights below is mostly the contrast between β ≈ 0.5–0.75 (dynamic, near its start) and β = 1.
#
# ## Fixed versus dynamic weights
# The same model, data and seed, trained twice: with α = β = 1 (the plain Magnet balance, per-cluster
# variances and PCA kept) and with the schedules. After each epoch a callback measures the test
# latents: mean distance of a point to its class mean (**intra**), mean distance between class means
# (**inter**), their ratio, and the silhouette.

# %%
seed_everything(CONFIG["seed"])
data = load_tutorial_data(n_train=CONFIG["n_train"], n_test=CONFIG["n_test"], seed=CONFIG["seed"])
channels, height, _ = data.info.image_shape


def measure_latent(history, model):
    latent, labels = embed(model, data, "test")
    record = history.epochs[-1]
    record.update(class_spread(latent, labels))
    record["test_silhouette"] = silhouette_score(latent, labels)


variants = {"fixed α = β = 1": {"alpha": 1.0, "beta": 1.0}, "dynamic α(E), β(E)": {}}
histories = {}
for title, weights in variants.items():
    seed_everything(CONFIG["seed"])
    model = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
    loss = LatentBoostLoss(lam=CONFIG["lam"], **weights)
    histories[title] = fit(model, data, loss, epochs=CONFIG["epochs"], lr=CONFIG["lr"],
                           seed=CONFIG["seed"], progress=False, callbacks=[measure_latent])
    for r in histories[title].epochs:
        print(f"{title:20s} epoch {r['epoch']}: α={r['alpha']:.3f} β={r['beta']:.3f} "
              f"intra {r['intra']:.3f} inter {r['inter']:.3f} ratio {r['ratio']:.2f} "
              f"silhouette {r['test_silhouette']:.3f} test acc {r['test_acc']:.3f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
for title, h in histories.items():
    for ax, key in zip(axes, ("intra", "inter", "ratio", "test_silhouette"), strict=True):
        ax.plot(h["epoch"], h[key], marker="o", label=title)
        ax.set_title(key if key != "ratio" else "inter / intra")
        ax.set_xlabel("epoch")
axes[0].legend(fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What this run shows** (the numbers printed above; one seed and a few epochs, so read trends,
# not decimals): the raw intra and inter distances depend on the scale of each latent space, which
# the network is free to change; the ratio inter / intra and the silhouette are scale free and are
# the fair comparison. Whether the dynamic schedule beats fixed weights is not something one seed
# of 6 epochs can settle, so no check below claims it; the FULL setting (30 epochs) lets the
# schedules actually move, and the committed 1-seed ablation (`results/README.md`: fixed α = β = 1,
# silhouette 0.320 against 0.330, 3 epochs on 10,000 images) is no verdict either.
#
# ## Checks on this run
# The schedules do what they say (α falls, β grows, both within their bounds); the weights logged by
# the loss are the schedule's; both variants learned far above chance and produced a latent whose
# classes are further apart than they are wide.

# %%
assert all(a >= b for a, b in zip(alphas, alphas[1:], strict=False)) and min(alphas) >= 0.1
assert all(a <= b for a, b in zip(betas, betas[1:], strict=False)) and max(betas) <= 2.0
dynamic = histories["dynamic α(E), β(E)"]
for r in dynamic.epochs:  # fit averages each part over the epoch's batches: equal up to rounding
    assert abs(r["alpha"] - alpha_schedule(r["epoch"])) < 1e-9
    assert abs(r["beta"] - beta_schedule(r["epoch"])) < 1e-9
for h in histories.values():
    assert h.last["test_acc"] > 1 / data.num_classes + 0.3, h.last["test_acc"]
    assert h.last["ratio"] > 1.0, h.last["ratio"]

# %% [markdown]
# ## Exercises
# 1. **Faster decay.** Pass `alpha=functools.partial(alpha_schedule, k_alpha=0.5)`: α reaches its floor
#    after a few epochs. What happens to the intra spread, with the default σ² and with
#    `variance_gradient=False`? *Hint: see "A catch" above: with the default, α pulls only through
#    the hinges it switches on or off.*
# 2. **Push only.** `alpha=0.0`: only impostors matter. Does the silhouette still rise?
# 3. **Reverse the schedules** (α growing, β falling) with `schedules.linear_warmup`. Is "pull first,
#    push later" better than the opposite on FULL?

# %%
# TODO (exercise 1)
# from functools import partial
# loss = LatentBoostLoss(lam=0.75, alpha=partial(alpha_schedule, k_alpha=0.5))

# %% [markdown]
# **Questions.** Why might pulling first and pushing later help an untrained network, whose early
# clusters are meaningless? Why does the hinge make large β less dangerous than it looks?
#
# ## Summary
# - α weighs compactness, β separation; Latent Boost moves from the first to the second over training.
# - Compare latent spaces with scale-free measures (inter/intra ratio, silhouette), not raw distances.
