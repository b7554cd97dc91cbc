# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: K chosen from the data
# Train Latent Boost with `num_clusters="auto"` (use the notebook's `train`) into `auto_model`,
# `auto_loss`; store the K per super-class it chose in `auto_k` and its sub-class measures (with
# `K_SUB` clusters, as in the table of section 4) in `auto_measures`.

# %%
# nbgrader: solution ex1-auto
### BEGIN SOLUTION
auto_model, auto_loss, _ = train("latentboost", num_clusters="auto")
auto_k = auto_loss.index.k_per_class(info.num_classes)
print(
    "chosen at epoch",
    auto_loss.index.selected_epoch,
    "K per super-class",
    auto_k,
    "sub-classes",
    K_SUB,
)
for c, chosen in enumerate(auto_loss.index.selection):
    scores = ", ".join(f"{k}: {v:.2f}" for k, v in chosen["scores"].items())
    print(f"  {info.classes[c]:9s} K = {chosen['k']}  silhouette per K: {scores}")
auto_train, auto_train_labels = embed(auto_model, data, "train")
auto_test, auto_test_labels = embed(auto_model, data, "test")
auto_measures = subclass_measures(
    auto_train,
    auto_train_labels,
    data.sub_labels("train"),
    auto_test,
    auto_test_labels,
    data.sub_labels("test"),
    K_SUB,
    num_classes=info.num_classes,
    seed=CONFIG["seed"],
)
print(
    f"| Latent Boost, K auto | {auto_k} | "
    + " | ".join(f"{auto_measures[k]:.3f}" for k in COLUMNS)
    + " |"
)
### END SOLUTION

# %%
# nbgrader: tests ex1-auto 1
assert len(auto_k) == info.num_classes and all(1 <= k <= 8 for k in auto_k)
assert auto_loss.index.selection is not None and auto_loss.index.selected_epoch == 1
assert all(math.isfinite(auto_measures[k]) for k in COLUMNS)
assert auto_measures["total_clusters"] == sum(K_SUB)

# %% [markdown]
# # nbgrader: answer ex1 2
# *Does the silhouette rule find the number of sub-classes?*
#
# ### BEGIN SOLUTION
# Not as a rule. It chooses K after one epoch, from the training latents of each super-class,
# without sub-class labels: the K whose k-means clustering has the highest silhouette, or 1 when no
# K reaches 0.25. A silhouette rewards well separated groups, and sub-classes that the network
# has not (yet) pulled apart are not separated: the rule tends to find fewer clusters than
# sub-classes in the confusable super-class (tops) and can match the count where the sub-classes
# differ a lot. The library's own measurement (`latentboost_lab.subclasses`' docstring: a
# cross-entropy latent after 3 epochs on `fmnist_super`) found (2, 2, 3) for (4, 3, 3)
# sub-classes. Full credit: the chosen K against `K_SUB`, read from the run, with this reason;
# the row in the table is compared with the K > 1 row without a ranking (one seed).
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: another rule
# On the training latents of the "Latent Boost, K = 1" model, choose K per super-class with both
# rules of `select_k_per_class` (k_max = 8) and store them in `by_rule`, a dict rule → list of K.

# %%
# nbgrader: solution ex2-rules
### BEGIN SOLUTION
k1_train, k1_labels = embed(models["Latent Boost, K = 1"], data, "train")
by_rule = {
    rule: [
        s.k
        for s in select_k_per_class(
            k1_train, k1_labels, 8, rule=rule, num_classes=info.num_classes, seed=CONFIG["seed"]
        )
    ]
    for rule in ("silhouette", "bic")
}
print(by_rule, "sub-classes:", K_SUB)
### END SOLUTION

# %%
# nbgrader: tests ex2-rules 1
assert set(by_rule) == {"silhouette", "bic"}
assert all(len(ks) == info.num_classes and all(1 <= k <= 8 for k in ks) for ks in by_rule.values())
assert by_rule["silhouette"] == k_found["Latent Boost, K = 1"]  # the notebook's own rule

# %% [markdown]
# # nbgrader: answer ex2 2
# *Which K does each rule choose, and why do they disagree?*
#
# ### BEGIN SOLUTION
# BIC fits a mixture of K spherical Gaussians and chooses the K with the lowest Bayesian
# information criterion; a trained latent is not a few spheres (clusters are elongated and
# uneven), so every added sphere still raises the likelihood more than BIC's penalty costs, and
# BIC usually runs to k_max (the library measured (8, 8, 8) on `fmnist_super`). The silhouette
# rule asks whether the points fall into well separated groups and says K = 1 below a silhouette
# of 0.25: it chooses few clusters. BIC answers "how many spheres does this cloud need", which is
# not "how many sub-classes are there". Full credit: both results from the run and this reason.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: a faster controller
# Train Latent Boost (K = 1) with `LatentBoostLoss(lam=ValidationController(step=0.2))` from the
# notebook's seed, data and budget; store its history in `fast_history`.

# %%
# nbgrader: solution ex3-controller
### BEGIN SOLUTION
from latentboost_lab.losses import LatentBoostLoss, ValidationController

seed_everything(CONFIG["seed"])
fast_model = build_model("small_cnn", info)
fast_history = fit(
    fast_model,
    data,
    LatentBoostLoss(lam=ValidationController(step=0.2)),
    epochs=CONFIG["epochs"],
    lr=CONFIG["lr"],
    seed=CONFIG["seed"],
    patience=None,
    eval_test=False,
    progress=False,
)
for name, history in (("step 0.1", lam_runs["controller"]), ("step 0.2", fast_history)):
    print(
        f"{name}: λ "
        + " ".join(f"{v:.2f}" for v in history["lam"])
        + "  validation accuracy "
        + " ".join(f"{v:.3f}" for v in history["val_acc"])
    )
### END SOLUTION

# %%
# nbgrader: tests ex3-controller 1
fast_lam = np.array(fast_history["lam"])
assert len(fast_lam) == CONFIG["epochs"] and abs(fast_lam[0] - 0.5) < 1e-6
assert (np.abs(np.diff(fast_lam)) <= 0.2 + 1e-6).all() and (fast_lam >= -1e-6).all()
assert (fast_lam <= 0.9 + 1e-6).all()

# %% [markdown]
# # nbgrader: answer ex3 1
# *Where does λ go, and what does the validation accuracy do meanwhile?*
#
# ### BEGIN SOLUTION
# While the validation accuracy holds, λ climbs 0.5 → 0.7 → 0.9 and stops at the ceiling (0.9);
# the first drop of more than 0.005 below the best accuracy so far sends it down by 0.2. A larger
# step reacts faster but overshoots: one noisy epoch moves the weight of the distance term by 0.2.
# With a few epochs and one seed the accuracy curves of the two controllers cannot be ranked.
# Full credit: the λ sequence read from the run, related to the accuracy of the epochs before.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex4
# ### Exercise 4: your own grouping
# Group the data set's classes your way with a dict (every class in exactly one super-class),
# load the same sizes with it into `my_data`, train a cross-entropy model on it and store its
# sub-class measures (K = the sub-classes per super-class) in `my_measures`.

# %%
# nbgrader: solution ex4-grouping
### BEGIN SOLUTION
if DATASET == "digits":  # by how the digit is drawn
    my_group = {
        "round": ["0", "6", "8", "9"],
        "straight": ["1", "4", "7"],
        "curly": ["2", "3", "5"],
    }
else:  # by where the item is worn (Fashion-MNIST)
    my_group = {
        "upper body": ["T-shirt/top", "Pullover", "Coat", "Shirt", "Dress"],
        "feet": ["Sandal", "Sneaker", "Ankle boot"],
        "other": ["Trouser", "Bag"],
    }
my_data = load_dataset(
    DATASET, group=my_group, seed=CONFIG["seed"], device="cpu", download=False, **sizes
)
seed_everything(CONFIG["seed"])
my_model = build_model("small_cnn", my_data.info)
fit(
    my_model,
    my_data,
    make_loss("ce"),
    epochs=CONFIG["epochs"],
    lr=CONFIG["lr"],
    seed=CONFIG["seed"],
    patience=None,
    eval_test=False,
    progress=False,
)
my_train, my_train_labels = embed(my_model, my_data, "train")
my_test, my_test_labels = embed(my_model, my_data, "test")
my_measures = subclass_measures(
    my_train,
    my_train_labels,
    my_data.sub_labels("train"),
    my_test,
    my_test_labels,
    my_data.sub_labels("test"),
    sub_classes_per_class(my_data),
    num_classes=my_data.num_classes,
    seed=CONFIG["seed"],
)
print(my_data.info.classes, {k: round(my_measures[k], 3) for k in COLUMNS})
### END SOLUTION

# %%
# nbgrader: tests ex4-grouping 1
assert my_data.info.group and len(my_data.info.sub_classes) == len(info.sub_classes)
assert all(math.isfinite(my_measures[k]) for k in COLUMNS)
assert 0 <= my_measures["subclass_nmi"] <= 1

# %% [markdown]
# # nbgrader: answer ex4 1
# *What does a cross-entropy latent keep of your sub-classes?*
#
# ### BEGIN SOLUTION
# Cross-entropy only needs the super-classes to be separable, yet its latent keeps much of the
# sub-class structure: the k-NN probe finds sub-classes far above chance (1 / number of
# sub-classes per super-class), because images of one sub-class look alike and the network maps
# similar images to nearby latents. How much it keeps depends on how different the sub-classes of
# a group are (Trouser and Bag: very; Shirt and T-shirt: hardly). Full credit: the student's
# measures, compared with the notebook's grouping, with this reading.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: answer questions 4
# *Why does NMI within the super-classes score K = 1 at exactly 0, while NMI over all test images
# does not? Why can a k-NN probe find the sub-classes of a model trained on super-classes? Why does
# uncertainty weighting's λ not describe its loss as a constant λ does? Why must a controller never
# read the test split?*
#
# ### BEGIN SOLUTION
# Inside one super-class, K = 1 puts every image in the same cluster: a constant labelling shares
# no information with the sub-classes (mutual information 0, and the adjusted Rand index of a
# single cluster is 0). Over all test images the K = 1 clusters are the super-classes, which
# already tell a lot about the sub-classes (each sub-class lies in one super-class): NMI(super,
# sub) > 0. The probe works because training on super-classes does not erase what makes images of
# one sub-class similar: the network maps similar images to nearby latents, and only a loss that
# pulls each super-class to one tight cluster works against that. Uncertainty weighting's loss is
# exp(−s_CE)·L_CE + exp(−s_dist)·L_dist + (s_CE + s_dist)/2: the λ shown is the ratio of the two
# weights, but their sum is not 1 and changes too, so the size of the steps changes as well as
# their direction. A controller that reads the test split tunes on it: the test accuracy it
# reports is no longer an estimate for unseen data (the validation split exists for this).
# (1 point each.)
# ### END SOLUTION
