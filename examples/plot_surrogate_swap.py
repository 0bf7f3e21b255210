"""
Solve your own model through a pruned surrogate
===============================================

A user's model contains a trained network whose outputs appear in the objective and in side
constraints: choose 20 inputs in ``[0, 1]`` under a budget ``sum(x) <= 6`` that maximise the
network's first output ("yield") while its second output ("risk") stays below a threshold.
The dense network is embedded with gurobi-ml's own ``add_predictor_constr``, as a user would.

:class:`~gurobi_sparse_surrogate.SurrogateSwap` replaces that embedding by the sparse
embedding of a pruned copy (80% of the weights removed) for the duration of a ``with`` block,
and its ``optimize`` runs in phases:

1. **surrogate**: solve with the pruned network; every incumbent is re-scored on the dense
   network (objective recomputed with the dense outputs, side constraints re-checked);
2. **repair**: incumbents that the dense outputs make infeasible get their inputs fixed and the
   rest of the model re-solved without any network;
3. **fallback** (dense): the dense model is solved with the best dense-valid point as a MIP
   start, so the answer is never worse than the surrogate's and can be proved optimal.

We run it twice: with a plain pruned surrogate, whose incumbents violate the risk limit on the
dense network (so the fallback does the work), and with a surrogate finetuned after pruning,
whose incumbents are valid at once. Leaving the block restores the dense embedding.
"""

import gurobipy as gp
import matplotlib.pyplot as plt
import numpy as np
import torch
from gurobi_ml import add_predictor_constr

from gurobi_sparse_surrogate import SurrogateSwap
from gurobi_sparse_surrogate.datasets import make_mlp

torch.set_num_threads(1)

# %%
# A 2x32 regression network trained on a synthetic "yield" and "risk" of 20 inputs.
rng = np.random.default_rng(0)
n = 20
a = rng.uniform(0.5, 1.5, n)
B = rng.normal(size=(n, 3)) / np.sqrt(n)
X = rng.uniform(0, 1, (4000, n)).astype(np.float32)
Y = np.stack([X @ a + np.sin(3 * X @ B[:, 0]), 2 * X @ B[:, 1] + np.abs(2 * X @ B[:, 2])], 1)
Y = Y.astype(np.float32)
torch.manual_seed(0)
net = make_mlp(n, (32, 32), 2)
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
inputs, targets = torch.as_tensor(X), torch.as_tensor(Y)
for _ in range(300):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(net(inputs), targets)
    loss.backward()
    optimizer.step()
net.eval()
threshold = float(np.quantile(Y[:, 1], 0.3))
print(f"training loss {loss.item():.3f}; risk threshold {threshold:.4f}")

# %%
# The user's model, with the dense network embedded by gurobi-ml.
m = gp.Model("allocation")
m.Params.OutputFlag = 0
m.Params.Threads = 1
x = m.addMVar(n, lb=0.0, ub=1.0, name="x")
y = m.addMVar(2, lb=-gp.GRB.INFINITY, name="y")
m.addConstr(x.sum() <= 6, name="budget")
m.addConstr(y[1] <= threshold, name="risk")
m.setObjective(y[0], gp.GRB.MAXIMIZE)
pc = add_predictor_constr(m, net, x, y)
m.update()
size_before = (m.NumVars, m.NumConstrs, m.NumGenConstrs)
print(
    f"dense model: {m.NumVars} variables, {m.NumConstrs} linear and {m.NumGenConstrs} general "
    "constraints"
)


def timeline(result, title):
    """Dense objective of each incumbent against time, one colour per phase."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    phases = list(dict.fromkeys(inc.phase for inc in result.history))
    for colour, phase in zip(plt.cm.tab10.colors, phases, strict=False):
        found = [inc for inc in result.history if inc.phase == phase]
        valid = [inc for inc in found if inc.valid]
        invalid = [inc for inc in found if not inc.valid]
        ax.scatter(
            [i.time for i in valid],
            [i.dense_objective for i in valid],
            color=colour,
            marker="o",
            label=f"{phase} (dense-valid)",
        )
        if invalid:
            # infeasible on the dense network: drawn at the surrogate's own objective
            ax.scatter(
                [i.time for i in invalid],
                [i.surrogate_objective for i in invalid],
                color=colour,
                marker="x",
                label=f"{phase} (surrogate objective, invalid)",
            )
    ax.set_xlabel("seconds since optimize()")
    ax.set_ylabel("objective (yield)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()


# %%
# Solve through a surrogate pruned to 80% sparsity (global magnitude pruning, no finetuning).
with SurrogateSwap(m, pc, surrogate=0.8) as swap:
    s = swap.surrogate_constr.stats
    print(
        f"surrogate embedding: {s['variables']} variables, {s['binaries']} binaries, "
        f"{s['constraints']} linear constraints"
    )
    result = swap.optimize(time_limit=10)
print(result)
timeline(result, "pruned to 80%, no finetuning")

# %%
# The same with finetuning after pruning (``prune_options`` go to ``prune_network``): the
# surrogate's incumbents now hold on the dense network too.
finetune = {"finetune": {"epochs": 5, "lr": 1e-3}, "data": (X, Y)}
with SurrogateSwap(m, pc, surrogate=0.8, prune_options=finetune) as swap:
    result = swap.optimize(time_limit=10)
print(result)
timeline(result, "pruned to 80%, finetuned")

# %%
# ``result.value`` gives the user's variables at the best dense-valid solution; the network
# outputs are the dense network's values there.
x_best, y_best = result.value(x), result.value(y)
print(f"x = {np.round(x_best, 3)}")
print(
    f"budget used {x_best.sum():.3f} <= 6; risk {y_best[1]:.4f} <= {threshold:.4f}; "
    f"yield {y_best[0]:.4f}"
)
with torch.no_grad():
    check = net(torch.as_tensor(x_best, dtype=torch.float32)).numpy()
assert np.allclose(check, y_best, atol=1e-4)

# %%
# Leaving the block restored the dense embedding: the model has its original size again.
# ``result.load()`` puts the judged answer into it, so that the user's own variables and
# gurobi-ml's ``get_error`` read it as after any gurobipy solve.
m.update()
print(
    f"restored model: {m.NumVars} variables, {m.NumConstrs} linear and {m.NumGenConstrs} "
    "general constraints"
)
assert (m.NumVars, m.NumConstrs, m.NumGenConstrs) == size_before
result.load()
print(f"x.X = {np.round(x.X, 3)}; objective {m.ObjVal:.4f}")
print(f"largest error of the dense embedding at it: {pc.get_error().max():.2e}")
