# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: silhouette on predictions
# For every arm, recompute the silhouette of the test latents with the *predicted* labels
# (`argmax` of the logits; Magnet's head is untrained, so use its nearest-cluster prediction: the
# class of the nearest class mean of its training latents). Store the scores in `on_predictions`,
# a dict arm → float.

# %%
# nbgrader: solution ex1-predicted
from latentboost_lab.metrics import silhouette_score

### BEGIN SOLUTION
on_predictions = {}
for title, r in results.items():
    latent_r, labels_r, logits_r = embed(r["model"], data, "test", return_logits=True)
    if title == "Magnet":  # its head is untrained: classify by the nearest class mean
        means = torch.stack([r["train_latent"][labels_train == k].mean(0)
                             for k in range(data.num_classes)])
        predicted = torch.cdist(latent_r, means).argmin(1)
    else:
        predicted = logits_r.argmax(1)
    r["predicted"] = predicted
    on_predictions[title] = silhouette_score(latent_r, predicted)
    print(f"{title:14s} true labels {r['silhouette'].mean():.3f}  predictions "
          f"{on_predictions[title]:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex1-predicted 2
assert set(on_predictions) == set(results)
for title, r in results.items():
    assert abs(on_predictions[title] - silhouette_score(r["latent"], r["predicted"])) < 1e-6
    assert on_predictions[title] >= float(r["silhouette"].mean()) - 0.05, title

# %% [markdown]
# # nbgrader: answer ex1 2
# *Which arm gains the most?*
#
# ### BEGIN SOLUTION
# The arms gain a little or nothing: predicted classes are cut by the model's own boundaries, so
# misclassified samples that sat between clusters (negative silhouettes with the true labels) now
# count for the class they are near. The arm whose latent agrees least with its classifier (the
# most misclassified samples between clusters) gains most; an arm with few errors gains almost
# nothing (digits, QUICK: Latent Boost 0.585 → 0.585, Magnet 0.525 → 0.536). Full credit:
# the gains from the student's run and the reason (the prediction agrees with the geometry by
# construction, which is why the silhouette must use true labels).
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: the worst samples
# Find the indices `worst` of the five test images with the lowest silhouette under Latent Boost
# and show them with their true class.

# %%
# nbgrader: solution ex2-worst
### BEGIN SOLUTION
values = results["Latent Boost"]["silhouette"]
worst = torch.topk(values, 5, largest=False).indices
fig, axes = plt.subplots(1, 5, figsize=(8, 2))
for ax, i in zip(axes, worst.tolist(), strict=True):
    ax.imshow(images_test[i, 0].cpu(), cmap="gray")
    ax.set_title(f"{data.classes[int(labels_test[i])]}\ns={values[i]:.2f}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()
### END SOLUTION

# %%
# nbgrader: tests ex2-worst 1
assert len(worst) == 5 and len(set(worst.tolist())) == 5
assert float(values[worst].max()) <= float(torch.sort(values).values[4]) + 1e-12

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: cosine instead of Euclidean
# Normalise each arm's test latents to unit length and recompute the silhouette and the
# Davies-Bouldin index into `cosine_scores`, a dict arm → (silhouette, Davies-Bouldin).

# %%
# nbgrader: solution ex3-cosine
### BEGIN SOLUTION
cosine_scores = {}
for title, r in results.items():
    unit = torch.nn.functional.normalize(r["latent"], dim=1)
    cosine_scores[title] = (silhouette_score(unit, r["labels"]),
                            davies_bouldin_score(unit, r["labels"]))
    print(f"{title:14s} cosine silhouette {cosine_scores[title][0]:.3f}  Davies-Bouldin "
          f"{cosine_scores[title][1]:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex3-cosine 2
assert set(cosine_scores) == set(results)
for title, (sil_cos, db_cos) in cosine_scores.items():
    unit = results[title]["latent"] / results[title]["latent"].norm(dim=1, keepdim=True)
    assert abs(sil_cos - silhouette_score(unit, results[title]["labels"])) < 1e-5
    assert db_cos > 0

# %% [markdown]
# # nbgrader: answer ex3 1
# *Does the ranking of the arms change?*
#
# ### BEGIN SOLUTION
# Whatever the run shows, the point is that the ranking can change: cosine ignores each latent's
# norm, and cross-entropy encodes confidence in the norm (confident samples have long latents),
# so its classes often look more separated by angle than by Euclidean distance, while the
# Magnet-style losses shape Euclidean distances directly. Full credit: the two rankings compared
# on the student's run.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: answer questions 3
# *Can a latent space have a high silhouette and a low accuracy? A high accuracy and a silhouette
# near 0? What would each mean for an explanation by prototypes?*
#
# ### BEGIN SOLUTION
# High silhouette, low accuracy: yes, if the head is poor (Magnet's untrained head: well clustered
# latents, chance-level softmax accuracy); prototypes then explain well what the *latent* does but
# not the head's decision. High accuracy, silhouette near 0: yes, classes can be linearly
# separable yet spread out and interleaved in distance (cross-entropy early in training); the
# nearest training images of a test image then often come from other classes, so an explanation
# by prototypes misleads even when the prediction is right. (1 point per case with an example, 1
# for what it means for prototypes.)
# ### END SOLUTION
