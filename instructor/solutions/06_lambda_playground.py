# %% [markdown]
# # nbgrader: task ex1
# ### Exercise 1: λ = 1
# Reset the playground, set λ to 1 and train `short` epochs (below) with the blocking
# `playground.train`. Keep the run's history in `lam_one`.

# %%
# nbgrader: solution ex1-lam-one
short = pick(2, 3)
### BEGIN SOLUTION
playground.reset()
playground.lam.value = 1.0
lam_one = playground.train(short)
for r in lam_one.epochs:
    print(f"epoch {r['epoch']}: λ {r['lam']:.2f}, test accuracy {r['test_acc']:.3f}, "
          f"silhouette {r['test_silhouette']:.3f}")
### END SOLUTION

# %%
# nbgrader: tests ex1-lam-one 1
assert len(lam_one) == short
assert all(s["lam"] == 1.0 for s in playground.steps)  # every step used λ = 1
# with λ = 1 the cross-entropy part has weight 0: the loss is the distance term alone
assert all(abs(s["train_loss"] - s["dist"]) < 1e-4 for s in playground.steps)

# %% [markdown]
# # nbgrader: answer ex1 2
# *What happens to the test accuracy of the softmax head, and to the silhouette?*
#
# ### BEGIN SOLUTION
# The head is never trained (λ = 1 gives cross-entropy weight 0), so its test accuracy stays far
# below the other runs', near chance or wherever its random weights happen to map the moving
# latents; the silhouette still rises, because the distance term shapes the latent as Magnet does
# (notebook 02). Geometry without a decision. (1 point each.)
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex2
# ### Exercise 2: λ = 0, then 0.75, mid-run
# Reset, set λ to 0, start a run of `2 * short` epochs, wait until it has made `short` epochs' worth
# of steps, move λ to 0.75 and wait for the end. Store the λ of every step of that run in
# `lams_seen` (a list).

# %%
# nbgrader: solution ex2-mid-run
### BEGIN SOLUTION
playground.reset()
playground.lam.value = 0.0
playground.start(2 * short)
per_epoch = -(-min(int(playground.n_train.value), len(data.y_train)) // playground.batch_size)
playground.wait(steps=short * per_epoch)
playground.lam.value = 0.75  # while the run trains
playground.wait()
lams_seen = [s["lam"] for s in playground.steps]
print(f"λ = 0 for {lams_seen.count(0.0)} steps, then 0.75 for {lams_seen.count(0.75)}")
print("\n".join(playground.history_lines()))
### END SOLUTION

# %%
# nbgrader: tests ex2-mid-run 2
assert set(lams_seen) == {0.0, 0.75} and lams_seen[0] == 0.0 and lams_seen[-1] == 0.75
switch = lams_seen.index(0.75)
assert all(lam == 0.75 for lam in lams_seen[switch:])  # one change, kept from that step on
assert len(playground.lambda_marks()) == 2

# %% [markdown]
# # nbgrader: answer ex2 2
# *Which loss part moves first at the mark, and does the silhouette jump after it?*
#
# ### BEGIN SOLUTION
# At the mark the distance term enters the loss with weight 0.75: the recorded L_dist, which
# cross-entropy had lowered only indirectly (by separating the classes), falls faster from the
# next steps, while cross-entropy, already low, barely moves. The silhouette does not jump within a step: it is measured after each epoch and
# rises over the following epochs as the distance term compacts the classes that cross-entropy
# had only separated. (1 point: L_dist moves first; 1: the silhouette rises gradually after.)
# ### END SOLUTION

# %% [markdown]
# # nbgrader: task ex3
# ### Exercise 3: no decay
# Reset, set k_α = k_β = 0 and train `short` epochs into `fixed_run`.

# %%
# nbgrader: solution ex3-fixed
### BEGIN SOLUTION
playground.reset()
playground.lam.value = 0.75
playground.k_alpha.value = 0.0
playground.k_beta.value = 0.0
fixed_run = playground.train(short)
print("α per epoch", [round(a, 3) for a in fixed_run["alpha"]],
      "β per epoch", [round(b, 3) for b in fixed_run["beta"]],
      "silhouette", [round(s, 3) for s in fixed_run["test_silhouette"]])
### END SOLUTION

# %%
# nbgrader: tests ex3-fixed 1
assert len(set(round(a, 9) for a in fixed_run["alpha"])) == 1  # α stays at α₀
assert len(set(round(b, 9) for b in fixed_run["beta"])) == 1  # β stays at β₀

# %% [markdown]
# # nbgrader: task ex4
# ### Exercise 4: PCA off
# Untick PCA (`playground.pca.value = False`), train one more epoch and store the batch widths the
# distance term saw in that epoch's steps in `widths_off`.

# %%
# nbgrader: solution ex4-pca-off
### BEGIN SOLUTION
last_epoch = len(playground.history)
k_before = playground.history.last["pca_k"]  # the last epoch with PCA on
playground.pca.value = False
playground.train(1)
widths_off = [s["pca_k"] for s in playground.steps if s["epoch"] == last_epoch]
print(f"with PCA off the distance term sees {set(widths_off)} dimensions per batch; with PCA on "
      f"it saw {k_before:.1f} on average in the epoch before")
### END SOLUTION

# %%
# nbgrader: tests ex4-pca-off 1
assert widths_off and all(k == playground.model.latent_dim for k in widths_off)

# %% [markdown]
# # nbgrader: answer ex4 1
# *Does the step time change?*
#
# ### BEGIN SOLUTION
# Slightly: without PCA there is no eigendecomposition of the 128 × 128 batch covariance per step,
# which notebook 03 timed at a few milliseconds, small beside a whole training step on a CPU; on a
# busy machine the difference drowns in the noise of `train_seconds`.
# ### END SOLUTION

# %% [markdown]
# # nbgrader: answer questions 3
# *Why is the 2-D PCA fitted once and kept? What would a refitted projection hide? Why would a
# loss that read `self.lam` twice in one step be wrong while a slider moves, and how does the
# snapshot avoid it?*
#
# ### BEGIN SOLUTION
# A projection fitted once gives fixed axes, so a point's movement on the screen is a movement of
# its latent; refitting every epoch would rotate and rescale the axes, and the picture could change
# although the latent barely moved, or stay the same although it moved (the motion would be
# absorbed by the new axes). Reading `self.lam` twice in one step races with the slider's thread:
# the gradient could use one λ and the record another (or the two halves of the loss different
# λs), so the history would lie about the step. The snapshot is one immutable `Settings` taken
# once per step under a lock: every use in that step sees the same values, and the record is the
# λ the gradient was computed with. (1 point each.)
# ### END SOLUTION
