# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: more epochs
# Train a fresh `SmallCNN` with cross-entropy for twice the configured epochs and record, after
# every epoch, the validation accuracy and the test silhouette in a list `curve` of dicts with the
# keys `epoch`, `val_acc` and `silhouette`. Keep the model as `model_long`.

# %%
# nbgrader: solution ex1-curve
### BEGIN SOLUTION
curve = []


def record_silhouette(history, net):
    z, y = embed(net, data, "test")
    record = history.epochs[-1]
    curve.append({"epoch": record["epoch"], "val_acc": record["val_acc"],
                  "silhouette": silhouette_score(z, y)})


seed_everything(CONFIG["seed"])
model_long = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
fit(model_long, data, make_loss("ce"), epochs=2 * CONFIG["epochs"],
    batch_size=CONFIG["batch_size"], lr=CONFIG["lr"], seed=CONFIG["seed"], progress=False,
    callbacks=[record_silhouette])
for point in curve:
    print(f"epoch {point['epoch']}: val acc {point['val_acc']:.3f}, "
          f"silhouette {point['silhouette']:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex1-curve 2
assert len(curve) == 2 * CONFIG["epochs"], len(curve)
assert [p["epoch"] for p in curve] == list(range(2 * CONFIG["epochs"]))
assert all(0.0 <= p["val_acc"] <= 1.0 and -1.0 <= p["silhouette"] <= 1.0 for p in curve)
# the last point is the silhouette of the trained model's test latents
assert abs(curve[-1]["silhouette"] - silhouette_score(*embed(model_long, data, "test"))) < 1e-6

# %% [markdown]
# # nbgrader: answer ex1 2
# *Does the silhouette grow as fast as the accuracy?*
#
# ### BEGIN SOLUTION
# No. Validation accuracy rises steeply over the first epochs and then flattens (on Fashion-MNIST
# it is within a few points of its best after 3–4 epochs of 9,000 images), while the
# silhouette keeps creeping up slowly or stalls around 0.3: cross-entropy only needs the classes
# to be *linearly separable* in the latent space, and once they are, its gradient on correctly
# classified samples is small, so nothing keeps pulling the classes together. Full credit: the
# two curves described from the student's own run, and the reason (separable is enough for
# cross-entropy, compact is not asked for).
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: width of the latent
# Train `SmallCNN(..., latent_dim=16)` with the configuration above; store its test latents in
# `latent16`, their labels in `labels16` and their silhouette in `silhouette16`.

# %%
# nbgrader: solution ex2-narrow
### BEGIN SOLUTION
seed_everything(CONFIG["seed"])
model16 = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height,
                   latent_dim=16)
fit(model16, data, make_loss("ce"), epochs=CONFIG["epochs"], batch_size=CONFIG["batch_size"],
    lr=CONFIG["lr"], seed=CONFIG["seed"], progress=False)
latent16, labels16 = embed(model16, data, "test")
silhouette16 = silhouette_score(latent16, labels16)
print(f"silhouette: latent width 128 {silhouette:.3f}, width 16 {silhouette16:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex2-narrow 1
assert latent16.shape == (len(data.y_test), 16), latent16.shape
assert abs(silhouette16 - silhouette_score(latent16, labels16)) < 1e-9

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: which classes overlap?
# Compute `per_class`, a tensor holding the mean silhouette of each class (index = class), and
# `recall`, each class's share of correctly predicted test images (the diagonal of the confusion
# matrix over its row sums). Print both per class.

# %%
# nbgrader: solution ex3-per-class
from latentboost_lab.metrics import silhouette_samples

### BEGIN SOLUTION
values = silhouette_samples(latent, labels)
per_class = torch.stack([values[labels == k].mean() for k in range(data.num_classes)])
matrix = confusion_matrix(pred, labels, data.num_classes).double()
recall = matrix.diag() / matrix.sum(1)
for k, name in enumerate(data.classes):
    print(f"{name:14s} silhouette {per_class[k]:+.3f}  recall {recall[k]:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex3-per-class 2
counts = torch.bincount(labels, minlength=data.num_classes).double()
assert per_class.shape == (data.num_classes,)
# the class means, weighted by class size, give back the silhouette score
assert abs(float((per_class.double() * counts).sum() / counts.sum()) - silhouette) < 1e-5
assert abs(float((recall.double() * counts).sum() / counts.sum()) - test_acc) < 1e-6

# %% [markdown]
# # nbgrader: answer ex3 2
# *Do the classes with the lowest silhouette match the confused rows of the confusion matrix?*
#
# ### BEGIN SOLUTION
# Largely yes on Fashion-MNIST: shirt, pullover, coat and T-shirt have the lowest silhouettes and
# the lowest recalls, because they overlap in the latent space. The match is not exact: the
# silhouette is about distances to the *nearest other class*, recall about the head's linear
# boundaries, and a class can be spread out yet linearly separable (a lower silhouette than its
# recall suggests). Full credit: the two rankings compared on the student's run, with one
# agreement and one exception explained.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: answer questions 3
# *Why does the silhouette use the true labels rather than the predictions? Would a perfect
# classifier necessarily have a silhouette of 1?*
#
# ### BEGIN SOLUTION
# With the predictions it would measure how well the latent agrees with the model's own
# decisions (a tight cluster of wrongly predicted images would score well); with the true labels
# it measures whether the *real* classes form compact, separated groups, which is what an
# explanation by nearest examples needs. A perfect classifier need not have a silhouette of 1:
# it needs the classes to be linearly separable, not compact. Classes can be long and thin, or
# far apart in one direction and spread in others, and still be perfectly separated: then a_i
# (the mean distance to one's own class) is far from 0 and s_i < 1. A silhouette of 1 needs every
# class shrunk to a point. (1 point per question answered with its reason, 1 for the example of
# separable-but-spread classes.)
# ### END SOLUTION
