"""
Maximise the output of a random ReLU network
============================================

The paper's second application: find the input of ``[0, 1]^n`` that maximises the scalar
output of a randomly initialised ReLU network. We use a seeded network with 100 inputs and
two hidden layers of 50 neurons (:func:`~gurobi_sparse_surrogate.datasets.random_relu_network`,
the smallest size in the paper) and call :func:`~gurobi_sparse_surrogate.maximize_output`
three ways, with the same time limit:

* the dense network's sparsity-aware embedding (stable neurons removed, big-M from bounds);
* an 80%-pruned surrogate whose solutions are all re-scored on the dense network, with
  fallback to the dense model for the rest of the time;
* the same surrogate with interval-plus-linear bounds (``bounds="linear"``).

A projected-gradient ascent on the dense network gives every run a warm start. Whatever the
MILP optimises, ``r.value`` is the dense network's output at ``r.x``.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from gurobi_sparse_surrogate import Box, maximize_output
from gurobi_sparse_surrogate.datasets import random_relu_network

torch.set_num_threads(1)

# %%
# The network and the box.
n = 100
net = random_relu_network(n, depth=2, width=50, seed=0)
box = Box(np.zeros(n), np.ones(n))

# %%
# Three runs with a 4-second limit each.
runs = {
    "dense": maximize_output(net, box, time_limit=4),
    "surrogate 0.8": maximize_output(net, box, time_limit=4, surrogate=0.8),
    "surrogate 0.8, linear bounds": maximize_output(
        net, box, time_limit=4, surrogate=0.8, bounds="linear"
    ),
}
print(f"{'method':<30} {'value':>9} {'bound':>9} {'optimal':>8} {'best at':>8} {'runtime':>8}")
for name, r in runs.items():
    bound = "" if r.bound is None else f"{r.bound:.4f}"
    print(
        f"{name:<30} {r.value:9.4f} {bound:>9} {r.optimal!s:>8} {r.time_to_best:8.2f} "
        f"{r.runtime:8.2f}"
    )

# %%
# The best dense value known against time: every solution of every phase is judged on the
# dense network, so the three runs are compared on the same scale.
fig, ax = plt.subplots(figsize=(6.4, 3.2))
for (name, run), marker in zip(runs.items(), "os^", strict=True):
    times, best = [], []
    for h in sorted(run.history, key=lambda h: h.time):
        if h.dense_objective is not None and (not best or h.dense_objective > best[-1]):
            times.append(h.time)
            best.append(h.dense_objective)
    if times:
        times.append(run.runtime)
        best.append(best[-1])
        ax.step(
            times,
            best,
            where="post",
            marker=marker,
            markevery=list(range(len(times) - 1)),
            label=name,
        )
ax.set_xlabel("seconds since the call")
ax.set_ylabel("best dense output")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# The history of the surrogate run: every solution, with the solver's objective (on the
# surrogate in the surrogate phase) and the dense network's value at the same input.
r = runs["surrogate 0.8"]
print("time  phase          solver objective  dense value")
for h in r.history:  # Incumbent records, as in every result of the package
    solver = "" if h.surrogate_objective is None else f"{h.surrogate_objective:.4f}"
    dense = "" if h.dense_objective is None else f"{h.dense_objective:.4f}"
    print(f"{h.time:5.2f} {h.phase:<14} {solver:>16} {dense:>12}")

# %%
# The reported value is the dense network's output at the reported input.
with torch.no_grad():
    check = float(net(torch.as_tensor(r.x, dtype=torch.float32))[0])
print(
    f"dense output at r.x: {check:.4f} (reported {r.value:.4f}); x in the box: "
    f"{bool(box.contains(r.x))}"
)
assert abs(check - r.value) < 1e-4 and box.contains(r.x)
for which, s in r.model_stats.items():
    print(
        f"{which:>9} embedding: {s['variables']} variables, {s['binaries']} binaries, "
        f"{s['constraints']} linear constraints"
    )
