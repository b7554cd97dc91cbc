# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: the threshold
# Train Latent Boost (λ = 0.75) with `pca_variance=0.8` and with `0.99`, otherwise as above. Store
# in `by_threshold` a dict mapping each threshold to `{"batch_k": ..., "silhouette": ...,
# "model": ...}` (batch k: the last epoch's mean `pca_k`; silhouette of the test latents).

# %%
# nbgrader: solution ex1-threshold
from latentboost_lab.metrics import silhouette_score

### BEGIN SOLUTION
by_threshold = {}
for threshold in (0.8, 0.99):
    seed_everything(CONFIG["seed"])
    net = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
    run = fit(net, data, LatentBoostLoss(lam=0.75, pca_variance=threshold),
              epochs=CONFIG["epochs"], lr=CONFIG["lr"], seed=CONFIG["seed"], progress=False)
    by_threshold[threshold] = {"batch_k": run.last["pca_k"], "model": net,
                               "silhouette": silhouette_score(*embed(net, data, "test"))}
    print(f"pca_variance {threshold}: batch k {run.last['pca_k']:.1f}, test silhouette "
          f"{by_threshold[threshold]['silhouette']:.3f}")
print(f"(0.95, above: batch k {history.last['pca_k']:.1f})")
### END SOLUTION

# %%
# nbgrader: tests ex1-threshold 2
assert set(by_threshold) == {0.8, 0.99}
for entry in by_threshold.values():
    assert 1 <= entry["batch_k"] <= model.latent_dim and -1 <= entry["silhouette"] <= 1
    check_latent_here, _ = embed(entry["model"], data, "test")
    # on the same latents, a higher threshold never keeps fewer components
    assert batch_pca(check_latent_here, 0.8).k <= batch_pca(check_latent_here, 0.99).k

# %% [markdown]
# # nbgrader: answer ex1 2
# *How do k and the silhouette change?*
#
# ### BEGIN SOLUTION
# k grows with the threshold (a few components at 0.8, several times more at 0.99, because the
# spectrum of a trained latent has a long tail of small directions). The silhouette moves much
# less and not always in the same direction: with fewer components the loss ignores more of the
# between-class structure (10 class means span up to 9 directions), with more it also counts
# noise directions in the spread. Full credit: k's monotone change, the silhouette compared on
# the student's runs, and the warning that one seed cannot rank the thresholds.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: cross-entropy's latent
# Train with `make_loss("ce")` and record the test-set k after every epoch (as
# `record_test_pca` does) into the list `ce_test_k`.

# %%
# nbgrader: solution ex2-ce-k
from latentboost_lab.recipes import make_loss

### BEGIN SOLUTION
ce_test_k = []


def record_ce_k(run, net):
    ce_test_k.append(int(batch_pca(embed(net, data, "test")[0], CONFIG["variance"]).k))


seed_everything(CONFIG["seed"])
ce_model = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
fit(ce_model, data, make_loss("ce"), epochs=CONFIG["epochs"], lr=CONFIG["lr"],
    seed=CONFIG["seed"], progress=False, callbacks=[record_ce_k])
print("test-set k per epoch: cross-entropy", ce_test_k, "Latent Boost", history["test_pca_k"])
### END SOLUTION

# %%
# nbgrader: tests ex2-ce-k 1
assert len(ce_test_k) == CONFIG["epochs"]
assert ce_test_k[-1] == int(batch_pca(embed(ce_model, data, "test")[0], CONFIG["variance"]).k)

# %% [markdown]
# # nbgrader: answer ex2 2
# *Is a cross-entropy latent more or less concentrated than a Latent Boost one?*
#
# ### BEGIN SOLUTION
# Expected: cross-entropy's test latents need more components for 95% than Latent Boost's: the
# distance term pulls each class towards its mean, which removes within-class variance in many
# directions and leaves the variance between the class means, which lives in at most C − 1 = 9
# directions. Full credit: the comparison from the student's run (if it comes out the other way
# on a short run, saying so and why one short run is weak evidence is also full credit).
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: batch size
# Train Latent Boost with `batch_size=64` and store the history in `history64`.

# %%
# nbgrader: solution ex3-batch
### BEGIN SOLUTION
seed_everything(CONFIG["seed"])
model64 = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
history64 = fit(model64, data, LatentBoostLoss(lam=0.75, pca_variance=CONFIG["variance"]),
                epochs=CONFIG["epochs"], lr=CONFIG["lr"], seed=CONFIG["seed"], batch_size=64,
                progress=False)
print("batch k per epoch: batch 64", [round(k, 1) for k in history64["pca_k"]],
      "batch 128", [round(k, 1) for k in history["pca_k"]])
### END SOLUTION

# %%
# nbgrader: tests ex3-batch 1
assert len(history64.epochs) == CONFIG["epochs"]
assert max(history64["pca_k"]) <= 63  # a centred batch of 64 has at most 63 directions

# %% [markdown]
# # nbgrader: answer questions 3
# *Why is the PCA basis detached from the graph? What would the gradient through the
# eigenvectors do?*
#
# ### BEGIN SOLUTION
# The basis only chooses the coordinates in which distances are measured; the loss should move
# the latents, not rotate the measuring frame. The gradient of an eigenvector involves
# 1/(λ_i − λ_j) for every pair of eigenvalues, which explodes when two eigenvalues are close (common
# in the tail of a latent's spectrum) and is undefined when they are equal, so training would be
# unstable; and it would let the loss lower itself by turning the subspace towards directions
# where the classes happen to look compact, rather than by making them compact. (1 point: what
# the basis is for; 1: the 1/(λ_i − λ_j) instability; 1: the loss gaming its own frame.)
# ### END SOLUTION
