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
# # 05 · Silhouette analysis: cross-entropy, Magnet and Latent Boost side by side
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/latentboost-lab/latentboost_lab/blob/main/notebooks/05_silhouette_analysis.ipynb)
#
# The Latent Boost paper argues that a better-clustered latent space is a more *interpretable* one,
# and measures clustering with the silhouette. **What you will learn**
#
# - the silhouette per sample and per class (the classic silhouette plot) and the Davies-Bouldin index;
# - how cross-entropy, Magnet and Latent Boost latents compare on the same data and seed;
# - what the silhouette does and does not say about interpretability;
# - an example-based explanation: the training images nearest to a test image in the latent space.
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
from latentboost_lab.metrics import davies_bouldin_score, embed, silhouette_samples
from latentboost_lab.plots import plot_comparison_latents, plot_silhouette
from latentboost_lab.recipes import make_loss
from latentboost_lab.tutorial import (
    environment_line,
    load_tutorial_data,
    mode,
    nearest_prototypes,
    pick,
)

plt.rcParams["figure.dpi"] = 80
print(environment_line())

# %% [markdown]
# ## Configuration
# `LATENTBOOST_MODE` chooses the setting. **QUICK** (`quick`, what the test suite runs;
# `LATENTBOOST_QUICK=1` still works): three 3-epoch trainings on 1,500 images, about a minute on a
# quiet 2-core CPU. **MEDIUM** (`medium`, the outputs stored here): three 5-epoch trainings on
# 10,000 images, a few minutes. **FULL** (`full`, the default): the whole data set and 15 epochs,
# for a GPU (run time not measured yet).

# %%
MODE = mode()
CONFIG = {"n_train": pick(1500, None, medium=10_000), "n_test": pick(1000, None, medium=2000),
          "epochs": pick(3, 15, medium=5), "lr": 1e-3, "seed": 0}
print(MODE.upper(), CONFIG)
seed_everything(CONFIG["seed"])
data = load_tutorial_data(n_train=CONFIG["n_train"], n_test=CONFIG["n_test"], seed=CONFIG["seed"])

# %% [markdown]
# ## Three arms, same data, same seed
# `make_loss` builds each arm with the project's defaults: `ce`; `magnet` (notebook 02);
# `latentboost` with $L = \lambda L_{dist} + (1-\lambda) L_{CE}$ and the paper's λ = 0.75.

# %%
channels, height, _ = data.info.image_shape
arms = {"cross-entropy": "ce", "Magnet": "magnet", "Latent Boost": "latentboost"}
results = {}
for title, name in arms.items():
    seed_everything(CONFIG["seed"])
    model = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
    loss = make_loss(name, data=data)
    history = fit(model, data, loss, epochs=CONFIG["epochs"], lr=CONFIG["lr"],
                  seed=CONFIG["seed"], progress=False)
    latent, labels = embed(model, data, "test")
    # Magnet's softmax head is untrained: its accuracy is the nearest-cluster classifier's
    acc = history.last["test_cluster_acc"] if name == "magnet" else history.last["test_acc"]
    results[title] = {"model": model, "latent": latent, "labels": labels, "acc": acc,
                      "silhouette": silhouette_samples(latent, labels),
                      "davies_bouldin": davies_bouldin_score(latent, labels)}
    print(f"{title:14s} test acc {acc:.3f}  silhouette {results[title]['silhouette'].mean():.3f}  "
          f"Davies-Bouldin {results[title]['davies_bouldin']:.3f}")

# %% [markdown]
# ## The silhouette plot
# For each sample, $s_i = (b_i - a_i)/\max(a_i, b_i)$ ($a_i$: mean distance to its own class, $b_i$: to
# the nearest other class). The classic plot sorts the values of each class into a horizontal band:
# a wide band far right is a compact, well-separated class; a band reaching below 0 holds samples
# that sit closer to another class. The dashed line is the mean, the silhouette score.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5), sharex=True)
for ax, (title, r) in zip(axes, results.items(), strict=True):
    plot_silhouette(r["latent"], r["labels"], data.classes, ax=ax)
    ax.set_title(f"{title}: silhouette {r['silhouette'].mean():.3f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Per class
# The mean silhouette of each class, per arm: which classes does each loss manage to compact?

# %%
print(f"{'class':14s}" + "".join(f"{t:>16s}" for t in results))
for k, name in enumerate(data.classes):
    row = [float(r["silhouette"][r["labels"] == k].mean()) for r in results.values()]
    print(f"{name:14s}" + "".join(f"{v:16.3f}" for v in row))

# %%
plot_comparison_latents({t: (r["latent"], r["labels"]) for t, r in results.items()}, data.classes)
plt.show()

# %% [markdown]
# ## Davies-Bouldin
# Another clustering index: for each class, the worst ratio (spread of class i + spread of class j) /
# distance between their centres, averaged over classes. **Lower is better** (0 is the ideal). It
# uses centroids, so it rewards round, compact classes; the silhouette uses all pairwise distances.
# The two need not agree: compare their rankings of the three arms in the printout above.
#
# ## What the silhouette does and does not say
# - It **does** say how much closer, on average, a sample is to its own class than to the next one,
#   in the Euclidean geometry of the latent: a property an explanation by nearest examples relies on.
# - It **does not** say that the latent dimensions mean anything to a human, that the clusters are the
#   *right* concepts (it is computed with the labels we gave it), or that the model is correct: a
#   tight cluster of wrongly predicted images scores well. It is scale free (multiply the latent by 10,
#   nothing changes) and blind to the decision boundary the head actually uses. Interpretability is a
#   claim about people; the silhouette is a proxy for one of its preconditions.
#
# ## An example-based explanation: nearest training prototypes
# In a well-clustered latent space, "why did the model say *coat*?" can be answered with "because, to
# the network, this image looks like these training coats". We take one test image and its five
# nearest training latents under each arm.

# %%
images_train, labels_train = data.split("train")
images_test, labels_test = data.split("test")
query = 0
fig, axes = plt.subplots(len(results), 6, figsize=(9, 1.8 * len(results)))
for row, (title, r) in zip(axes, results.items(), strict=True):
    r["train_latent"], _ = embed(r["model"], data, "train")  # kept for the k-NN check below
    idx, dist = nearest_prototypes(r["train_latent"], r["latent"][query], k=5)
    row[0].imshow(images_test[query, 0].cpu(), cmap="gray")
    row[0].set_title(f"test: {data.classes[int(labels_test[query])]}", fontsize=8)
    row[0].set_ylabel(title, fontsize=8)
    for ax, i, d in zip(row[1:], idx[0].tolist(), dist[0].tolist(), strict=True):
        ax.imshow(images_train[i, 0].cpu(), cmap="gray")
        ax.set_title(f"{data.classes[int(labels_train[i])]}\nd={d:.2f}", fontsize=7)
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])
    same = sum(int(labels_train[i]) == int(labels_test[query]) for i in idx[0].tolist())
    print(f"{title:14s} {same} of 5 prototypes share the test image's class")
fig.tight_layout()
plt.show()

# %% [markdown]
# The distances are in each arm's own units (the arms' latent spaces are different spaces), so compare
# the *labels* of the prototypes across rows, not the numbers. One image is an anecdote, and it
# need not favour Latent Boost: count the prototypes of the right class per arm (printed above)
# before reading anything into the pictures (in the MEDIUM run stored here all three arms' five
# prototypes share the test image's class, so this image tells the arms apart not at all). As a
# whole-test-set check, the
# majority label of the 5 nearest training prototypes is itself a classifier (k-NN): its accuracy
# says how often such an explanation points at the right class.

# %%
knn_acc = {}
for title, r in results.items():
    idx, _ = nearest_prototypes(r["train_latent"], r["latent"], k=5)
    votes = labels_train[idx].mode(dim=1).values
    knn_acc[title] = (votes == r["labels"]).float().mean().item()
    print(f"{title:14s} 5-NN accuracy of the prototypes {knn_acc[title]:.3f}")

# %% [markdown]
# In the MEDIUM run stored here that accuracy is highest for cross-entropy (0.878, against 0.867 for
# Latent Boost and 0.863 for Magnet): Latent Boost's higher silhouette did not make its
# nearest-example explanations point at the right class more often. One seed; the differences are
# about a point.
#
# ## Checks on this run
# On the same data and seed, Latent Boost's test latents have a higher silhouette than cross-entropy's,
# and every arm's prototype explanation points to the right class far more often than chance. One
# seed and a few epochs prove nothing about the method: the first check only says that this run
# behaves like the committed 5-seed comparison, where the silhouette was higher in every seed
# (+0.075, p < 0.001; `results/README.md`).

# %%
sil = {t: float(r["silhouette"].mean()) for t, r in results.items()}
chance = 1 / data.num_classes
assert sil["Latent Boost"] > sil["cross-entropy"], sil
assert all(a > chance + 0.3 for a in knn_acc.values()), knn_acc
assert all(r["acc"] > chance + 0.3 for r in results.values())

# %% [markdown]
# ## Exercises
# 1. **Silhouette on predictions.** Recompute the silhouette with the *predicted* labels instead of the
#    true ones. Which arm gains the most? *Hint: `silhouette_samples(latent, logits.argmax(1))`; use
#    `embed(..., return_logits=True)`.*
# 2. **The worst samples.** Show the five test images with the lowest silhouette under Latent Boost.
#    Are they ambiguous to you too? *Hint: `torch.topk(values, 5, largest=False)`.*
# 3. **Cosine instead of Euclidean.** Normalise the latents to unit length and recompute both indices.
#    Does the ranking of the arms change?

# %%
# TODO (exercise 2): the least typical test images under Latent Boost
# values = results["Latent Boost"]["silhouette"]; worst = torch.topk(values, 5, largest=False).indices
_ = torch  # (torch is used in the exercises)

# %% [markdown]
# **Questions.** Can a latent space have a high silhouette and a low accuracy? Can it have a high
# accuracy and a silhouette near 0? What would each mean for an explanation by prototypes?
#
# ## Summary
# - The silhouette plot shows, class by class, how compact and separated the latent is.
# - On this run Latent Boost's latent is better clustered than cross-entropy's: in the MEDIUM run
#   stored here a silhouette of 0.341 against 0.292 and a lower Davies-Bouldin index (1.055
#   against 1.333). Its accuracy after these 5 epochs is not higher: 0.837 against 0.850 here.
#   With λ = 0.75 only a quarter of the loss trains the head, which then learns more slowly at
#   first. The paper reports accuracy gains after full training (+2.56 points on
#   Fashion-MNIST); our committed runs have not reproduced them so far: trained to convergence on
#   10,000 Fashion-MNIST images over 5 seeds, +0.68 points (p = 0.051, not significant), with the
#   silhouette gain clear (`results/README.md` states each claim).
# - Magnet clusters too, but classifies only through its clusters.
# - Nearest training prototypes turn a clustered latent space into an explanation by examples.
