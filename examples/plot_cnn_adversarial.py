"""
Adversarial inputs for a convolutional network
==============================================

A small CNN classifies 14x14 MNIST digits: a 3x3 convolution with stride 2 and 4 channels, a
ReLU, a 2x2 max pool, then a ReLU layer of 32 neurons
(:func:`~gurobi_sparse_surrogate.datasets.make_cnn`). It starts with
``nn.Unflatten(1, (1, 14, 14))``, so that it reads flat inputs in torch's order, like every
network this package embeds.

The embedding turns the convolution into a sparse matrix (each of its 196 neurons reads at most
9 pixels), removes the neurons that are stable over the input domain, and gives each max-pool
window only the inputs that can be its maximum: a window where one input's lower bound is above
every other input's upper bound is linear, the others get a binary per surviving input.
:func:`~gurobi_sparse_surrogate.find_adversarial` then searches an L1 ball around a held-out
image for an input the network misclassifies, here through a 50%-pruned surrogate judged on
the dense CNN.
"""

import gurobipy as gp
import matplotlib.pyplot as plt
import numpy as np
import torch

from gurobi_sparse_surrogate import L1Ball, add_sparse_predictor_constr, find_adversarial
from gurobi_sparse_surrogate.datasets import (
    accuracy,
    load_mnist,
    make_cnn,
    train_classifier,
    train_test_split,
)

torch.set_num_threads(1)

# %%
# Data and classifier: the bundled MNIST digits at 14x14 pixels (seeded; a few seconds).
X, y = load_mnist(size=14)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
torch.manual_seed(0)
net = train_classifier(
    X_train, y_train, network=make_cnn(14), epochs=15, lr=1e-2, augment=True, seed=0
)
print(net)
print(f"held-out accuracy {accuracy(net, X_test, y_test):.3f}")

# %%
# The embedding over an L1 ball of radius 3 around the first held-out image. The input
# variables may have the image's shape ``(1, 14, 14)``; ``print_stats`` shows the channels and
# kernel of every layer, and how many neurons (pooling windows) each one keeps.
x0 = X_test[0].astype(np.float64)
ball = L1Ball(x0, 3.0)
with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
    x = m.addMVar((1, 14, 14), lb=0.0, ub=1.0)
    ball.add_to_model(m, x.reshape(-1))
    pc = add_sparse_predictor_constr(m, net, x, domain=ball, bounds="linear")
    pc.print_stats()

# %%
# The search: a projected-gradient attack first, then the MILP through the surrogate if the
# attack fails. Every point is checked on the dense CNN with torch.
r = find_adversarial(net, x0, ball, target="runner-up", time_limit=20, surrogate=0.5)
print(r)
assert r.status == "adversarial"
with torch.no_grad():
    logits = net(torch.as_tensor(r.x, dtype=torch.float32).reshape(1, -1))[0].numpy()
assert ball.contains(r.x) and logits.argmax() != r.label
print(
    f"label {r.label}: the CNN now says {logits.argmax()}; L1 distance "
    f"{np.abs(r.x - x0).sum():.3f} <= 3, {int((np.abs(r.x - x0) > 1e-6).sum())} pixels changed"
)

# %%
# The digit, the adversarial input and their difference.
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
delta = r.x - x0
limit = max(np.abs(delta).max(), 1e-9)
panels = [
    (x0, f"digit (label {r.label})", "gray_r", 0.0, 1.0),
    (r.x, f"adversarial (says {logits.argmax()})", "gray_r", 0.0, 1.0),
    (delta, f"difference (L1 {np.abs(delta).sum():.2f})", "RdBu", -limit, limit),
]
for ax, (image, title, cmap, vmin, vmax) in zip(axes, panels, strict=True):
    shown = ax.imshow(image.reshape(14, 14), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize="small")
    ax.axis("off")
fig.colorbar(shown, ax=axes[2], fraction=0.046)
fig.tight_layout()
