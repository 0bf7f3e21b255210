"""
Bound tightening: fewer unstable neurons, smaller models
========================================================

Every ReLU neuron whose pre-activation bounds do not straddle zero is *stable*: an inactive
neuron (upper bound <= 0) vanishes from the model and an active one (lower bound >= 0) is a
linear equation. Only unstable neurons need a binary variable, with big-M constants taken
from the bounds. Tighter bounds therefore mean fewer binaries and a tighter relaxation.

This example compares the bounding methods registered in
:data:`gurobi_sparse_surrogate.bounds.problem.METHODS` on a 2x64 classifier trained on
scikit-learn's digits, over an L-infinity ball of radius 0.05 around an image:

* ``"interval"``: interval arithmetic on the sparse weight matrices (the first layer exact
  over the domain);
* ``"linear"``: interval plus a back-substituted linear relaxation (CROWN-style);
* ``"lp"``: LP on each still-unstable neuron's cone of influence;
* ``"milp"``: MILP on the cones (binaries for their unstable ReLUs);
* ``"auto"``: linear, then LP and small MILPs within a time budget.

For each method we print the unstable neurons per layer, the bounding time and the size of
the resulting embedding (``add_sparse_predictor_constr(..., bounds=method)``), and check the
bounds against a forward pass of random points of the ball.
"""

import time

import gurobipy as gp
import matplotlib.pyplot as plt
import numpy as np
import torch

from gurobi_sparse_surrogate import LinfBall, add_sparse_predictor_constr, compute_bounds
from gurobi_sparse_surrogate.bounds.problem import METHODS, count_unstable
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier
from gurobi_sparse_surrogate.network.extraction import extract_layers, layers_forward

torch.set_num_threads(1)

# %%
# A trained classifier and an L-infinity ball around one image.
X, y = load_digits()
net = train_classifier(X, y, hidden=(64, 64), epochs=10, lr=1e-2, batch_size=32, seed=0)
layers = extract_layers(net)
ball = LinfBall(X[0], 0.05)
points = ball.sample(2000, rng=0)
values = layers_forward(layers, points)  # pre-activations of each layer at random points
print(f"methods registered: {sorted(METHODS)}")

# %%
# Bounds and unstable neurons per hidden layer.
order = [m for m in ("interval", "linear", "lp", "milp", "auto") if m in METHODS]
print(f"{'method':<10} {'unstable per hidden layer':>26} {'seconds':>8}")
unstable_by_method = {}
for method in order:
    start = time.perf_counter()
    bounds = compute_bounds(layers, ball.lower, ball.upper, method=method, domain=ball)
    seconds = time.perf_counter() - start
    unstable = [
        count_unstable(layer, lo, hi)
        for layer, lo, hi in zip(layers, bounds.lower, bounds.upper, strict=True)
        if layer.relu
    ]
    # soundness: every sampled pre-activation lies within the bounds
    for lo, hi, v in zip(bounds.lower, bounds.upper, values, strict=True):
        assert np.all(v >= lo - 1e-6) and np.all(v <= hi + 1e-6)
    print(f"{method:<10} {str(unstable):>26} {seconds:8.2f}")
    unstable_by_method[method] = unstable

# %%
# Unstable neurons per hidden layer for each method (fewer is better).
fig, ax = plt.subplots(figsize=(6.4, 3.2))
width = 0.8 / len(unstable_by_method)
for k, (method, counts) in enumerate(unstable_by_method.items()):
    positions = np.arange(len(counts)) + (k - (len(unstable_by_method) - 1) / 2) * width
    bars = ax.bar(positions, counts, width, label=method)
    ax.bar_label(bars, fontsize="x-small")
ax.set_xticks(np.arange(len(counts)), [f"hidden layer {i + 1}" for i in range(len(counts))])
ax.set_ylabel("unstable neurons (of 64)")
ax.legend(fontsize="small", ncols=len(unstable_by_method))
fig.tight_layout()

# %%
# The embeddings built with each method: variables, binaries and linear constraints.
print(f"{'method':<10} {'variables':>10} {'binaries':>9} {'constraints':>12} {'removed':>8}")
for method in order:
    m = gp.Model()
    m.Params.OutputFlag = 0
    x = m.addMVar(64, lb=ball.lower, ub=ball.upper)
    pc = add_sparse_predictor_constr(m, net, x, bounds=method, domain=ball)
    s = pc.stats
    removed = sum(row["removed"] for row in s["layers"])
    print(
        f"{method:<10} {s['variables']:>10} {s['binaries']:>9} {s['constraints']:>12} {removed:>8}"
    )
    m.dispose()
