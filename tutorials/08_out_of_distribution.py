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
# # 08 · Out of distribution: does a structured latent know what it has not seen?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/latentboost-lab/latentboost_lab/blob/main/notebooks/08_out_of_distribution.ipynb)
#
# A classifier answers for every input, also for inputs unlike anything it was trained on: a
# handwritten digit shown to a clothing classifier, a photo, noise. *Out-of-distribution (OOD)
# detection* gives each input a score that says how in-distribution it looks, so that the odd ones
# can be set aside. The paper leaves open how Latent Boost behaves here (its open question 2). Its
# latent is shaped into compact, separated class clusters, so "far from every cluster" should be a
# usable signal. This notebook measures that, beside the standard scores. **What you will learn**
#
# - the standard OOD scores: from the logits (maximum softmax probability, max logit, energy) and
#   from the latent (Mahalanobis distance, k-th nearest neighbour), and the structured latent's own
#   score, the largest cluster likelihood;
# - how OOD detection is measured: AUROC, AUPR and FPR at 95% TPR, and why the in-distribution
#   test split and the OOD set must go through the same normalisation;
# - how to compare cross-entropy and Latent Boost on it fairly, and how to run that comparison at
#   scale (`latentboost-lab compare --ood`, `latentboost-lab ood`).
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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from sklearn.metrics import roc_auc_score, roc_curve

from latentboost_lab import build_model, fit, seed_everything
from latentboost_lab.data import DataNotFoundError
from latentboost_lab.metrics import accuracy, embed
from latentboost_lab.ood import OODScorer, format_ood_table, load_ood, ood_metrics
from latentboost_lab.plots import fit_projection
from latentboost_lab.recipes import make_loss
from latentboost_lab.tutorial import environment_line, load_tutorial_data, mode, pick

plt.rcParams["figure.dpi"] = 80
started = time.perf_counter()
print(environment_line())

# %% [markdown]
# ## Configuration
# `LATENTBOOST_MODE` chooses the setting. **QUICK** (`quick`, what the test suite runs;
# `LATENTBOOST_QUICK=1` still works): a stratified subset of Fashion-MNIST (1,500 training and 500
# test images), 3 epochs per model, 500 images per OOD set: under a minute on a quiet 2-core CPU.
# It shows the method; three epochs are far too few to judge the losses. **MEDIUM** (`medium`, the
# outputs stored here): 10,000 training and 2,000 test images, 5 epochs per model, 2,000 images per
# OOD set, a few minutes. **FULL** (`full`, the default): the whole data set, 15 epochs, every OOD
# image, for a GPU (run time not measured yet). Without Fashion-MNIST the notebook falls back to
# scikit-learn's `digits` and uses the synthetic OOD sets only.

# %%
MODE = mode()
CONFIG = {"n_train": pick(1500, None, medium=10_000), "n_test": pick(500, None, medium=2000),
          "epochs": pick(3, 15, medium=5), "n_ood": pick(500, None, medium=2000), "lr": 1e-3,
          "seed": 0}  # fmt: skip
print(MODE.upper(), CONFIG)
data = load_tutorial_data(n_train=CONFIG["n_train"], n_test=CONFIG["n_test"], seed=CONFIG["seed"])

# %% [markdown]
# ## 1. The OOD sets
# For Fashion-MNIST (clothes, 28x28 grayscale) the OOD sets are: **MNIST** digits (same size and
# style, other content: *near* OOD), **CIFAR-10** photos converted to 28x28 grayscale (*far* OOD),
# and three synthetic sets made on the fly: **Gaussian** noise with Fashion-MNIST's mean and std,
# **uniform** noise, and **shuffled** Fashion-MNIST test images, whose pixels are permuted (the same
# brightness histogram, none of the shapes). `load_ood` converts every set to the training images'
# shape. Each OOD image then goes through *the in-distribution set's normalisation*
# (`data.normalize`, Fashion-MNIST's mean and std), as any input of the deployed model would: an
# OOD input does not come with statistics of its own.

# %%
wanted = ["mnist", "cifar10", "gaussian", "uniform", "shuffled"]
if data.info.name == "digits":
    wanted = ["gaussian", "uniform", "shuffled"]  # real sets at 8x8 would be guesswork
n_ood = CONFIG["n_ood"] and min(CONFIG["n_ood"], len(data.y_test))  # digits: 360 test images
ood_sets = {}
for name in wanted:
    try:
        ood_sets[name] = load_ood(name, data, n=n_ood, seed=CONFIG["seed"])
    except DataNotFoundError:
        print(f"{name}: not found (set LATENTBOOST_DATA to a folder holding it); left out")
for ood in ood_sets.values():
    print(ood)

rows = {f"in: {data.info.name}": data.x_test, **{k: v.images for k, v in ood_sets.items()}}
# one image: a row of 6 examples per set (first channel), with the set's name on the left
montage = torch.cat([torch.cat(list(images[:6, 0].cpu()), dim=1) for images in rows.values()])
height = data.info.image_shape[1]
fig, ax = plt.subplots(figsize=(3.2, 0.55 * len(rows)))
ax.imshow(montage, cmap="gray", vmin=0, vmax=255)
ax.set_yticks([height * (i + 0.5) for i in range(len(rows))], list(rows), fontsize=8)
ax.set_xticks([])
plt.show()

# %% [markdown]
# ## 2. Two models, same data, same seed
# Cross-entropy and Latent Boost ($L = \lambda L_{dist} + (1-\lambda) L_{CE}$, the paper's λ = 0.75),
# with the same initial weights, batches and budget: only the loss differs.

# %%
models = {}
for title, name in {"cross-entropy": "ce", "Latent Boost": "latentboost"}.items():
    seed_everything(CONFIG["seed"])
    model = build_model("small_cnn", data.info)
    fit(model, data, make_loss(name, data=data), epochs=CONFIG["epochs"], lr=CONFIG["lr"],
        seed=CONFIG["seed"], eval_test=False, progress=False)  # fmt: skip
    models[title] = model
    _, labels, logits = embed(model, data, "test", return_logits=True)
    print(f"{title:14s} test accuracy {accuracy(logits, labels):.3f}")

# %% [markdown]
# ## 3. The scores
# Every score is **higher for inputs that look more in-distribution**. With $f(x)$ the logits,
# $z$ the latent (the classifier's input) and $\mu$ means fitted on the *training* latents:
#
# | score | formula | paper |
# |---|---|---|
# | `msp` | $\max_c \mathrm{softmax}(f(x))_c$ | Hendrycks & Gimpel, ICLR 2017 |
# | `max_logit` | $\max_c f_c(x)$ | Hendrycks et al., ICML 2022 |
# | `energy` | $\log \sum_c e^{f_c(x)}$ (minus the free energy) | Liu et al., NeurIPS 2020, eq. 7 |
# | `mahalanobis` | $-\min_c (z-\mu_c)^\top \Sigma^{+} (z-\mu_c)$, one shared covariance | Lee et al., NeurIPS 2018, eq. 2 |
# | `knn` | $-\lVert \hat z - \hat z_{(k)} \rVert$, normalised latents, k-th nearest training latent (k = 50) | Sun et al., ICML 2022 |
# | `cluster` | $\max_k -\lVert z-\mu_k \rVert^2 / 2\sigma_k^2$, one cluster per class | Magnet (Rippel et al., 2016, eq. 6) / Latent Boost |
# | `cluster_k4` | the same with 4 k-means clusters per class | as above |
#
# The last two are the log of the largest cluster likelihood $\max_k \exp(-\lVert z-\mu_k\rVert^2/2\sigma_k^2)$:
# exactly the terms Magnet and Latent Boost shape the latent for. Magnet's classifier normalises them
# over the classes; for OOD detection the *unnormalised* maximum is what matters (an input far from
# every cluster gets a low value, whatever the ratio between classes). `OODScorer` fits everything
# once on the training split and then scores any images.

# %%
scorers = {
    title: OODScorer(seed=CONFIG["seed"]).fit(model, data) for title, model in models.items()
}
in_scores = {title: scorer.score_split("test") for title, scorer in scorers.items()}
out_scores = {
    title: {name: scorer.score(ood.images) for name, ood in ood_sets.items()}
    for title, scorer in scorers.items()
}
print(scorers["Latent Boost"])

# %% [markdown]
# ### Score histograms, in against out
# For a good score the in-distribution test images (grey) sit to the right of the OOD images. The
# first OOD set is shown, for the energy score and the structured latent's `cluster` score.

# %%
first = next(iter(ood_sets))
fig, axes = plt.subplots(2, 2, figsize=(9, 5.2))
for row, title in zip(axes, models, strict=True):
    for ax, score in zip(row, ("energy", "cluster"), strict=True):
        a = in_scores[title][score].cpu().numpy()
        b = out_scores[title][first][score].cpu().numpy()
        bins = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 40)
        ax.hist(a, bins=bins, alpha=0.6, color="0.4", label=f"in: {data.info.name}")
        ax.hist(b, bins=bins, alpha=0.6, color="C3", label=f"out: {first}")
        auc = ood_metrics(in_scores[title][score], out_scores[title][first][score])["auroc"]
        ax.set_title(f"{title}: {score} (AUROC {auc:.3f})", fontsize=9)
        ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Measuring OOD detection
# A threshold on a score splits inputs into "accept" and "reject". Sweeping it gives the ROC curve:
# the share of OOD images accepted (false positive rate) against the share of in-distribution test
# images accepted (true positive rate). **AUROC** is the area under it, the probability that a random
# in-distribution image scores higher than a random OOD image (0.5: guessing). **FPR95** is the share
# of OOD images still accepted when 95% of the in-distribution images are (lower is better).
# **AUPR-in / AUPR-out** are average precisions with either set as the positive class; they depend
# on the sizes of the two sets. Our metrics equal scikit-learn's (`roc_auc_score`,
# `average_precision_score`) to 1e-12: the legends below show scikit-learn's AUROC, and the checks at
# the end compare it with ours on every score and set.

# %%
fig, axes = plt.subplots(1, len(models), figsize=(9, 3.8), sharey=True)
for ax, title in zip(axes, models, strict=True):
    for i, score in enumerate(in_scores[title]):
        a, b = in_scores[title][score].cpu().numpy(), out_scores[title][first][score].cpu().numpy()
        labels = np.r_[np.ones(len(a)), np.zeros(len(b))]
        fpr, tpr, _ = roc_curve(labels, np.r_[a, b])
        ax.plot(
            fpr, tpr, color=f"C{i}", label=f"{score} ({roc_auc_score(labels, np.r_[a, b]):.3f})"
        )
    ax.axhline(0.95, color="k", ls=":", lw=0.8)
    ax.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8)
    ax.set_title(f"{title}: {data.info.name} vs {first}", fontsize=9)
    ax.set_xlabel("OOD accepted (false positive rate)")
    ax.legend(fontsize=7, loc="lower right")
axes[0].set_ylabel("in-distribution accepted (TPR)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The whole picture: AUROC (%) of every score on every OOD set, for each model (higher is better).
# The lines under the tables name each model's best score per set and every score whose AUROC is
# below 0.5: there the OOD images look *more* in-distribution than the test images (confident
# logits on inputs the model never saw are a known failure of the logit scores).
# One seed and a few epochs are not a verdict on either loss: section 6 shows how to compare them
# over seeds with a paired test.

# %%
results = {}
for title in models:
    results[title] = {
        name: {s: ood_metrics(in_scores[title][s], out_scores[title][name][s])
               for s in in_scores[title]}
        for name in ood_sets
    }  # fmt: skip
    display(Markdown(f"**{title}**\n\n" + format_ood_table(results[title])))
for title, per_set in results.items():
    for name, per_score in per_set.items():
        best = max(per_score, key=lambda s: per_score[s]["auroc"])
        print(f"{title:14s} {name:9s} best score: {best:11s} AUROC {per_score[best]['auroc']:.3f}  "
              f"FPR95 {per_score[best]['fpr95']:.3f}")  # fmt: skip
        upside_down = [s for s, m in per_score.items() if m["auroc"] < 0.5]
        if upside_down:  # the OOD images score *higher* than the test images: worse than guessing
            print(f"{'':25s} AUROC below 0.5 (OOD looks more in-distribution): {upside_down}")

# %% [markdown]
# In the MEDIUM run stored here (one seed, 5 epochs), the latent scores (Mahalanobis, kNN, cluster)
# beat the logit scores on every set for both models, and cross-entropy's logit scores rank the
# MNIST digits *above* its own test images (AUROC 0.27–0.33), where Latent Boost's do not
# (0.77–0.94). One seed: a lead for the paired comparison of section 6, not a finding.
#
# ## 5. Where the OOD images land in the latent space
# The test latents projected on their first two principal components (fitted on the
# in-distribution test latents only), coloured by class, with the first OOD set's latents on top
# (black crosses). Two dimensions hide most of the latent's width: OOD points that overlap a cluster
# here can still be far from it in the full latent, which is where the scores measure.

# %%
fig, axes = plt.subplots(1, len(models), figsize=(10, 4.2))
for ax, (title, model) in zip(axes, models.items(), strict=True):
    latent, labels = embed(model, data, "test")
    project = fit_projection(latent)
    xy = project(latent).cpu().numpy()
    ax.scatter(xy[:, 0], xy[:, 1], c=labels.cpu().numpy(), cmap="tab10", s=3, alpha=0.5)
    scorer = scorers[title]
    ood_latent, _ = scorer.embed_images(ood_sets[first].images[:200])
    oxy = project(ood_latent).cpu().numpy()
    ax.scatter(oxy[:, 0], oxy[:, 1], marker="x", color="k", s=10, lw=0.7, label=f"OOD: {first}")
    ax.set_title(f"{title}", fontsize=9)
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. The comparison at scale
# One run per loss is an anecdote. The experiment runner scores every run of a comparison with
# every score after training, stores the metrics in `runs.json`, and its report adds, per OOD set,
# AUROC and FPR95 per arm (mean ± std over seeds) and the paired difference against cross-entropy
# with its p-value, as for accuracy (notebook 07):
#
# ```bash
# latentboost-lab compare --dataset fashion_mnist --n-train 10000 --arms ce,center,magnet,latentboost \
#     --epochs 30 --patience 5 --seeds 5 --threads 1 --ood mnist,cifar10,noise,shuffled \
#     --out results/fashion_mnist_ood
# ```
#
# One trained model (a checkpoint of `latentboost-lab train --checkpoint`) is scored with
#
# ```bash
# latentboost-lab train --dataset fashion_mnist --loss latentboost --checkpoint --out runs/lb
# latentboost-lab ood runs/lb.pt --dataset fashion_mnist --sets mnist,cifar10,noise,shuffled
# ```
#
# ## Checks on this run
# What this notebook relies on, checked on the scores just computed: the metrics equal
# scikit-learn's on them (so the table's AUROC is the one in the ROC legends); every score is finite
# and one number per image; negating a score turns its AUROC into one minus it; and every default
# score was computed. The last line prints how long the cells took (not asserted: a busy machine
# is slower).

# %%
for title in models:
    for name in ood_sets:
        for score, metrics in results[title][name].items():
            a = in_scores[title][score].cpu().numpy()
            b = out_scores[title][name][score].cpu().numpy()
            assert np.isfinite(a).all() and np.isfinite(b).all() and len(b) == len(ood_sets[name])
            labels = np.r_[np.ones(len(a)), np.zeros(len(b))]
            assert abs(metrics["auroc"] - roc_auc_score(labels, np.r_[a, b])) < 1e-12
            flipped = ood_metrics(-in_scores[title][score], -out_scores[title][name][score])
            assert abs(flipped["auroc"] - (1 - metrics["auroc"])) < 1e-12
            assert 0.0 <= metrics["fpr95"] <= 1.0
    assert list(in_scores[title]) == list(scorers[title].scores)
print(f"the notebook's cells took {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
# 1. **More clusters.** `OODScorer(scores=["cluster", "cluster_k2", "cluster_k8"])`: does modelling
#    each class with more clusters help the structured latent's score? On which set?
# 2. **The Magnet arm.** Add `"Magnet": "magnet"` to the models of section 2. Its softmax head is
#    untrained (Magnet trains the latent only): what happens to its logit scores, and to its latent
#    scores? *Hint: compare `msp` with `cluster`.*
# 3. **kNN's k.** `OODScorer(k=1)` and `OODScorer(k=200)`: how does the kNN score's AUROC move?
# 4. **Another normalisation.** Normalise the MNIST images with MNIST's own mean and std instead of
#    Fashion-MNIST's (`(x / 255 - 0.1307) / 0.3081`) and embed them by hand: why is that a wrong
#    experiment for a deployed model?

# %%
# TODO (exercise 1)
# scorer = OODScorer(scores=["cluster", "cluster_k2", "cluster_k8"]).fit(models["Latent Boost"], data)
# display(Markdown(format_ood_table(scorer.evaluate(ood_sets))))

# %% [markdown]
# **Questions.** Why must the OOD sets never be used to choose a score's settings (k, K, the
# temperature) when the result is reported as OOD detection? If Latent Boost's latent gives a better
# AUROC with the Mahalanobis score but not with MSP, what does that say about where its structure
# lives? Why does AUPR-out change when the OOD set is made ten times larger, while AUROC does not?
#
# ## Summary
# - An OOD score ranks inputs by how in-distribution they look; AUROC and FPR95 measure the ranking
#   against an OOD set, with both sets normalised the same way.
# - The logit scores read the classifier's head; Mahalanobis, kNN and the cluster likelihood read
#   the latent. The cluster likelihood is the structured latent's own score.
# - `latentboost-lab compare --ood ...` answers the paper's open question over seeds with paired
#   tests; `results/README.md` states what the repository measured.
