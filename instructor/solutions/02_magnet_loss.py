# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: the margin
# For `margin` 0 and 5, compute the toy batch's per-sample losses *by hand* (with `intra`, `inter`
# from above) into a dict `by_margin` mapping the margin to a tensor of 6 losses, and print which
# samples switch on (positive loss) or off.

# %%
# nbgrader: solution ex1-margin
### BEGIN SOLUTION
by_margin = {m: torch.relu(intra + m + inter) for m in (0.0, 5.0)}
for m, losses in by_margin.items():
    print(f"margin {m}: losses {losses.round(decimals=3).tolist()}, "
          f"active samples {torch.nonzero(losses > 0).flatten().tolist()}")
### END SOLUTION

# %%
# nbgrader: tests ex1-margin 2
for m in (0.0, 5.0):
    reference, _ = MagnetLoss(margin=m).per_sample_losses(z, y)
    assert torch.allclose(by_margin[m], reference, atol=1e-5), m
assert (by_margin[5.0] >= by_margin[0.0]).all()  # a larger margin never switches a hinge off

# %% [markdown]
# # nbgrader: answer ex1 1
# *Which samples switch on or off?*
#
# ### BEGIN SOLUTION
# With margin 0 a sample is active only if its own mean is not nearer (in units of 2σ²) than the
# log-sum-exp of its impostors, A + B > 0: on this batch only sample 1 (A + B = +0.03); samples
# 2, 3 and 5 (A + B between −0.16 and −0.04) switch off, and 0 and 4 were off already. With margin
# 5 every sample is active, even 0 and 4 deep inside their classes: the margin exceeds every
# |A + B| here (the largest is 2.21). The margin sets how far beyond "nearer than the impostors"
# a sample must be before it stops contributing.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: several clusters per class
# Train a fresh model with `make_loss("magnet", num_clusters=3, seed=...)` (otherwise the
# configuration above) and store its nearest-cluster test accuracy in `cluster_acc3` and the
# objective in `magnet3`.

# %%
# nbgrader: solution ex2-clusters
### BEGIN SOLUTION
seed_everything(CONFIG["seed"])
model3 = SmallCNN(in_channels=channels, num_classes=data.num_classes, image_size=height)
magnet3 = make_loss("magnet", num_clusters=3, seed=CONFIG["seed"])
fit(model3, data, magnet3, epochs=CONFIG["epochs"], lr=CONFIG["lr"], seed=CONFIG["seed"],
    progress=False)
latent3, labels3 = embed(model3, data, "test")
cluster_acc3 = (magnet3.predict(latent3).argmax(1) == labels3).float().mean().item()
print(f"nearest-cluster accuracy: 1 cluster per class {cluster_acc:.3f}, 3 per class "
      f"{cluster_acc3:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex2-clusters 1
assert magnet3.index.centres.shape == (3 * data.num_classes, model.latent_dim)
assert cluster_acc3 > 1 / data.num_classes + 0.2, cluster_acc3

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: the broken port's preferred scale
# Add a seventh point of class 0 at (3.0, 2.5), on class 1's mean (the batch `z7`, `y7`).
# Evaluate `magnet_divided_by_sigma4(c * z7, y7)` on `scales7 = torch.logspace(-2, 2, 41)` into a
# list `broken7`, and store the scale with the smallest loss in `preferred_scale`.

# %%
# nbgrader: solution ex3-scale
### BEGIN SOLUTION
z7 = torch.cat([z, torch.tensor([[3.0, 2.5]])])
y7 = torch.cat([y, torch.tensor([0])])
scales7 = torch.logspace(-2, 2, 41, dtype=torch.float64)
broken7 = [float(magnet_divided_by_sigma4(c * z7.double(), y7)) for c in scales7]
preferred_scale = float(scales7[min(range(len(broken7)), key=broken7.__getitem__)])
print(f"c = 0.01: {broken7[0]:.1f}; c = 100: {broken7[-1]:.3f}; smallest "
      f"{min(broken7):.3f} at c = {preferred_scale:.2f}")
### END SOLUTION

# %%
# nbgrader: tests ex3-scale 2
assert len(broken7) == 41
# the confused seventh point makes shrinking costly: the loss has a minimum inside the range
assert broken7[0] > 10 * min(broken7) and broken7[-1] > min(broken7)
assert 0.01 < preferred_scale < 100
assert abs(float(MagnetLoss()(0.01 * z7, y7)) - float(MagnetLoss()(z7, y7))) < 1e-4

# %% [markdown]
# # nbgrader: answer ex3 2
# *What happens at c = 0.01, and which scale would training drive the latent to?*
#
# ### BEGIN SOLUTION
# At c = 0.01 the confused seventh point's term d/2σ⁴ grows like 1/c² (here to several hundred),
# so the loss explodes instead of falling to 0. As c grows every term goes to 0 and the loss
# rises to m + log 2 ≈ 1.69. In between there is a minimum (about c ≈ 0.5 on this batch): the
# broken loss has a preferred scale, set by how confused the batch is, and gradient descent would
# pull the latent's scale towards it instead of separating the classes. The correct 2σ² loss is
# the same at every scale. Full credit: the blow-up at small c, the limit at large c, and "a
# preferred scale that training can reach by rescaling alone".
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex4
# ### Exercise 4: implement the Magnet loss yourself
# Write `my_magnet_loss(z, y, margin=1.0)`: the mean Magnet loss of a batch of latents `z` (N, D)
# with class labels `y` (N,), one cluster per class, exactly as in "The formula" above:
# the shared variance σ² = Σᵢ d_{i,yᵢ} / (N − 1), the intra term d_{i,yᵢ}/2σ², the
# log-sum-exp over the impostor clusters, the margin and the hinge. Use only torch operations
# (no `latentboost_lab`). The autograded check compares it with the library on random batches,
# scaled ones included: a loss divided by 2σ⁴ fails there.

# %%
# nbgrader: solution ex4-my-magnet
def my_magnet_loss(z, y, margin=1.0):
    ### BEGIN SOLUTION
    classes, member = torch.unique(y, return_inverse=True)
    means = torch.stack([z[member == k].mean(0) for k in range(len(classes))])
    d = torch.cdist(z, means).pow(2)
    own = d[torch.arange(len(y)), member]
    sigma2 = own.sum() / (len(y) - 1)
    impostor = torch.arange(len(classes))[None, :] != member[:, None]
    inter = torch.logsumexp((-d / (2 * sigma2)).masked_fill(~impostor, float("-inf")), dim=1)
    return torch.relu(own / (2 * sigma2) + margin + inter).mean()
    ### END SOLUTION

# %%
# nbgrader: tests ex4-my-magnet 4
check = torch.Generator().manual_seed(2024)
for trial in range(8):
    n_classes = 2 + trial % 4
    per_class = 2 + int(torch.randint(0, 6, (1,), generator=check))
    dim = (2, 5, 16, 32)[trial % 4]
    labels_check = torch.arange(n_classes).repeat_interleave(per_class)
    spread = 0.5 + 3 * torch.rand(1, generator=check).item()
    latent_check = (spread * torch.randn(n_classes, dim, generator=check)[labels_check]
                    + torch.randn(len(labels_check), dim, generator=check)).double()
    margin_check = (0.0, 0.5, 1.0, 2.0)[trial % 4]
    expected = MagnetLoss(margin=margin_check)(latent_check, labels_check)
    for scale in (1.0, 0.01, 100.0):  # the σ⁴ trap: the right loss ignores the scale
        mine = my_magnet_loss(scale * latent_check, labels_check, margin=margin_check)
        assert torch.allclose(torch.as_tensor(mine, dtype=torch.float64), expected.double(),
                              rtol=1e-4, atol=1e-6), (trial, scale, float(mine), float(expected))
# labels need not be 0..C-1
shifted = my_magnet_loss(latent_check, labels_check + 7)
assert torch.allclose(torch.as_tensor(shifted, dtype=torch.float64),
                      MagnetLoss()(latent_check, labels_check + 7).double(), rtol=1e-4)

# %% [markdown]
# # nbgrader: answer questions 3
# *When would a shared variance and per-cluster variances disagree most about which samples are
# "confused"? What does a sample with no impostor in its batch contribute?*
#
# ### BEGIN SOLUTION
# They disagree most when the clusters have very different spreads: a wide class measured in a
# shared unit looks loose (its members have large d/2σ² and stay active), while per-cluster
# variances call the same members close to their own mean; a tight class is the opposite, and as
# an impostor a wide cluster reaches farther with its own σ_k² (e^{-d/2σ_k²} falls off more
# slowly), so its neighbours become confused. With equal spreads the two agree. A sample with no
# impostor cluster in its batch has an empty log-sum-exp (−∞): its hinge is off and it contributes
# nothing (the library returns 0 for it, `has_impostor`), so a batch of one class teaches nothing.
# (1 point: different spreads; 1: the direction of the disagreement for wide and tight clusters;
# 1: zero contribution without impostors.)
# ### END SOLUTION
