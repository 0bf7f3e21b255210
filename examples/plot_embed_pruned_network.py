"""
Embed a pruned network in a model of your own
=============================================

Train a small ReLU classifier on scikit-learn's 8x8 digits, prune 80% of its weights with
:func:`~gurobi_sparse_surrogate.prune_network`, and embed the pruned network in a Gurobi model
with :func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr`.

The model asks: within a box of half-width 0.1 around an image of a digit, which input makes
the logit of another class as large as possible compared with the true class? The embedding
only creates variables for neurons that can still change sign (unstable neurons), so it is
much smaller than gurobi-ml's embedding of the same (dense) network, which we build for
comparison. ``get_error()`` checks that the solver's outputs match torch's forward pass at
the solver's inputs.
"""

import gurobipy as gp
import matplotlib.pyplot as plt
import numpy as np
import torch
from gurobi_ml import add_predictor_constr

from gurobi_sparse_surrogate import add_sparse_predictor_constr, prune_network
from gurobi_sparse_surrogate.datasets import accuracy, load_digits, train_classifier

torch.set_num_threads(1)

# %%
# Train a 2x32 classifier on the digits (a few seconds) and prune it.
X, y = load_digits()
net = train_classifier(X, y, hidden=(32, 32), epochs=10, lr=1e-2, batch_size=32, seed=0)
sparse = prune_network(net, 0.8)  # global magnitude pruning; `net` is not modified
print(f"dense accuracy {accuracy(net, X, y):.3f}, pruned accuracy {accuracy(sparse, X, y):.3f}")
print(f"achieved sparsity {sparse.pruning_report.sparsity:.2f}")

# %%
# The user's model: an input in a box around image 0, objective logit[other] - logit[label].
x0, label = X[0].astype(np.float64), int(y[0])
other = (label + 1) % 10
radius = 0.1


def build(model_name):
    """A fresh model with the input variables of the box around ``x0``."""
    m = gp.Model(model_name)
    m.Params.OutputFlag = 0
    m.Params.Threads = 1
    x = m.addMVar(64, lb=np.maximum(x0 - radius, 0.0), ub=np.minimum(x0 + radius, 1.0), name="x")
    return m, x


m, x = build("sparse")
pc = add_sparse_predictor_constr(m, sparse, x)
m.setObjective(pc.output[0, other] - pc.output[0, label], gp.GRB.MAXIMIZE)
m.Params.TimeLimit = 10
m.optimize()
pc.print_stats()
print(
    f"status {m.Status}, best logit[{other}] - logit[{label}] on the pruned network: {m.ObjVal:.4f}"
)
error = pc.get_error().max()
print(f"largest |solver output - torch output| = {error:.2e}")
assert error < 1e-4

# %%
# The point found is judged on the dense network: the only value that counts.
x_best = np.asarray(x.X)
with torch.no_grad():
    dense_logits = net(torch.as_tensor(x_best, dtype=torch.float32)).numpy()
print(
    f"dense network at that point: logit[{other}] - logit[{label}] = "
    f"{dense_logits[other] - dense_logits[label]:.4f}"
)

# %%
# The same question on the dense network, embedded by this package (stable neurons removed)
# and by gurobi-ml (every neuron, each ReLU a max general constraint).
m_full, x_full = build("sparse-surrogate dense")
pc_full = add_sparse_predictor_constr(m_full, net, x_full)
m_full.setObjective(pc_full.output[0, other] - pc_full.output[0, label], gp.GRB.MAXIMIZE)
m_full.Params.TimeLimit = 10
m_full.optimize()
print(f"dense network, solved exactly: best logit[{other}] - logit[{label}] = {m_full.ObjVal:.4f}")

m_dense, x_dense = build("gurobi-ml dense")
pc_dense = add_predictor_constr(m_dense, net, x_dense)
for model in (m, m_full, m_dense):
    model.update()
sizes = {
    "gurobi-ml, dense network": m_dense,
    "this package, dense network": m_full,
    "this package, pruned network": m,
}
print(f"{'model':<30} {'variables':>10} {'binaries':>9} {'linear':>7} {'general':>8}")
for name, model in sizes.items():
    print(
        f"{name:<30} {model.NumVars:>10} {model.NumBinVars:>9} {model.NumConstrs:>7} "
        f"{model.NumGenConstrs:>8}"
    )

# %%
# The three models' sizes side by side.
fig, ax = plt.subplots(figsize=(6.4, 3.0))
kinds = ["NumVars", "NumBinVars", "NumConstrs", "NumGenConstrs"]
labels = ["variables", "binaries", "linear constraints", "general constraints"]
width = 0.8 / len(sizes)
for k, (name, model) in enumerate(sizes.items()):
    positions = np.arange(len(kinds)) + (k - (len(sizes) - 1) / 2) * width
    ax.bar(positions, [getattr(model, kind) for kind in kinds], width, label=name)
ax.set_xticks(np.arange(len(kinds)), labels)
ax.legend(fontsize="small")
fig.tight_layout()
