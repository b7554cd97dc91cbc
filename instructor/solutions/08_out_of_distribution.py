# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: more clusters
# Fit `OODScorer(scores=["cluster", "cluster_k2", "cluster_k8"])` on the Latent Boost model and
# evaluate it on every OOD set into `more_clusters` (`scorer.evaluate(ood_sets)`).

# %%
# nbgrader: solution ex1-clusters
### BEGIN SOLUTION
cluster_scorer = OODScorer(scores=["cluster", "cluster_k2", "cluster_k8"],
                           seed=CONFIG["seed"]).fit(models["Latent Boost"], data)
more_clusters = cluster_scorer.evaluate(ood_sets)
display(Markdown(format_ood_table(more_clusters)))
### END SOLUTION

# %%
# nbgrader: tests ex1-clusters 1
assert set(more_clusters) == set(ood_sets)
for per_score in more_clusters.values():
    assert set(per_score) == {"cluster", "cluster_k2", "cluster_k8"}
    # one cluster per class is the notebook's own `cluster` score
for name in ood_sets:
    assert abs(more_clusters[name]["cluster"]["auroc"]
               - results["Latent Boost"][name]["cluster"]["auroc"]) < 1e-9

# %% [markdown]
# # nbgrader: answer ex1 1
# *Does modelling each class with more clusters help? On which set?*
#
# ### BEGIN SOLUTION
# More clusters follow multi-modal classes more closely; if they help, it is where OOD images fall
# between the modes of a class (the near-OOD set, MNIST digits) rather than against noise, which
# lies far from every cluster either way. With few training latents per class, k = 8 clusters fit
# noise and can lose again. The student's table decides for this run. Full credit: the per-set
# comparison read from the table, with this reasoning.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: the Magnet arm
# Train a third model with `make_loss("magnet", ...)`, fit an `OODScorer` on it and evaluate it on
# the OOD sets into `magnet_ood`.

# %%
# nbgrader: solution ex2-magnet
### BEGIN SOLUTION
seed_everything(CONFIG["seed"])
magnet_model = build_model("small_cnn", data.info)
fit(magnet_model, data, make_loss("magnet", data=data, seed=CONFIG["seed"]),
    epochs=CONFIG["epochs"], lr=CONFIG["lr"], seed=CONFIG["seed"], eval_test=False,
    progress=False)
magnet_ood = OODScorer(seed=CONFIG["seed"]).fit(magnet_model, data).evaluate(ood_sets)
for name, per_score in magnet_ood.items():
    print(f"{name:9s} msp {per_score['msp']['auroc']:.3f}  cluster {per_score['cluster']['auroc']:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex2-magnet 1
assert set(magnet_ood) == set(ood_sets)
assert all({"msp", "cluster"} <= set(per_score) for per_score in magnet_ood.values())

# %% [markdown]
# # nbgrader: answer ex2 2
# *What happens to its logit scores, and to its latent scores?*
#
# ### BEGIN SOLUTION
# Magnet never trains the softmax head, so its logits are a random linear map of the latent:
# `msp`, `max_logit` and `energy` rank inputs by accident: their AUROCs are erratic (digits,
# QUICK: msp 0.61–0.85). The latent scores (`cluster`, `mahalanobis`, `knn`) read the trained
# latent and stay high (digits, QUICK: cluster 0.98–0.99). The lesson: a score must read the part of the model
# that was trained. (1 point per half.)
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: kNN's k
# Evaluate the kNN score with k = 1 and with k = 200 (at most the number of training latents) on
# the Latent Boost model into `knn_by_k`, a dict k → `{set: {"knn": metrics}}`.

# %%
# nbgrader: solution ex3-knn
### BEGIN SOLUTION
knn_by_k = {}
for k in (1, min(200, len(data.y_train))):
    knn_scorer = OODScorer(scores=["knn"], k=k, seed=CONFIG["seed"]).fit(models["Latent Boost"], data)
    knn_by_k[k] = knn_scorer.evaluate(ood_sets)
    print(f"k = {k}: " + ", ".join(f"{name} {m['knn']['auroc']:.3f}"
                                   for name, m in knn_by_k[k].items()))
### END SOLUTION

# %%
# nbgrader: tests ex3-knn 1
assert 1 in knn_by_k and len(knn_by_k) == 2
assert all(set(per_set) == set(ood_sets) for per_set in knn_by_k.values())

# %% [markdown]
# # nbgrader: answer ex3 1
# *How does the kNN score's AUROC move?*
#
# ### BEGIN SOLUTION
# k = 1 follows single outlying training latents (an OOD image near one odd training image looks
# in-distribution), so it is noisier; a large k measures the distance to a whole region and
# blurs small clusters. Once k exceeds the number of training latents of a class (digits: about
# 130 per class) the k-th neighbour of *every* input lies in another class and the score stops
# separating in from out (AUROC near 0.5). Sun et al. found a middle k best; the student's numbers
# decide for this run. Full credit: the movement per set with these reasons.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex4
# ### Exercise 4: another normalisation
# If MNIST is among the OOD sets, embed its images normalised with MNIST's *own* statistics
# (`(x / 255 - 0.1307) / 0.3081`) through the Latent Boost model and compare the `cluster` score's
# AUROC with the notebook's. Store both AUROCs in `normalisation` (a dict, empty without MNIST).

# %%
# nbgrader: solution ex4-normalisation
### BEGIN SOLUTION
normalisation = {}
if "mnist" in ood_sets:
    lb_model = models["Latent Boost"].eval()
    device = next(lb_model.parameters()).device
    own_stats = ((ood_sets["mnist"].images.float() / 255 - 0.1307) / 0.3081).to(device)
    with torch.no_grad():
        logits_own, latent_own = lb_model(own_stats)
    scores_own = scorers["Latent Boost"].score_latents(latent_own, logits_own)
    normalisation = {
        "in-distribution statistics": results["Latent Boost"]["mnist"]["cluster"]["auroc"],
        "MNIST's own statistics": ood_metrics(in_scores["Latent Boost"]["cluster"],
                                               scores_own["cluster"])["auroc"],
    }
print(normalisation or "MNIST is not among the OOD sets here")
### END SOLUTION

# %%
# nbgrader: tests ex4-normalisation 1
assert isinstance(normalisation, dict)
if "mnist" in ood_sets:
    assert all(0.0 <= v <= 1.0 for v in normalisation.values()) and len(normalisation) == 2

# %% [markdown]
# # nbgrader: answer ex4 1
# *Why is that a wrong experiment for a deployed model?*
#
# ### BEGIN SOLUTION
# A deployed model receives raw inputs and applies *its own* preprocessing; it does not know that
# an input comes from MNIST, so it cannot normalise it with MNIST's statistics. Normalising each
# OOD set with its own statistics hands the detector information it will never have and changes
# the images' brightness distribution, which is one of the signals that separates the sets.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: answer questions 3
# *Why must the OOD sets never be used to choose a score's settings? What does a better
# Mahalanobis AUROC without a better MSP say about where the structure lives? Why does AUPR-out
# change with the OOD set's size, while AUROC does not?*
#
# ### BEGIN SOLUTION
# Tuning k, K or the temperature on the OOD sets fits the detector to those particular outliers;
# the reported AUROC then overstates how it does on the unknown inputs it is meant for (test-set
# leakage, in OOD form). A better Mahalanobis but not MSP says that the structure lives in the
# latent's geometry (class-conditional Gaussians around compact clusters) and not in the head's
# confidence. AUROC is a ranking probability over pairs (one in, one out) and does not depend on
# how many of each there are; precision does: with ten times more OOD images among the positives
# of AUPR-out, the base rate changes and so does the area. (1 point each.)
# ### END SOLUTION
