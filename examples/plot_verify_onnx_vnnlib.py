"""
Verify an ONNX network against VNN-LIB properties
=================================================

Verification benchmarks (VNN-COMP) and many users keep their networks as ONNX files and
their properties in VNN-LIB. This example goes through the whole path with files it writes
itself:

1. train a small digits classifier with an input normalisation layer and export it to ONNX
   with ``torch.onnx.export``;
2. write three VNN-LIB properties: "no image within an L-infinity distance ``eps`` of a digit
   is classified otherwise", for three radii ``eps``;
3. read them back with :func:`~gurobi_sparse_surrogate.load_onnx` (the normalisation is folded
   into the first layer) and :func:`~gurobi_sparse_surrogate.load_vnnlib`, and decide them
   with :func:`~gurobi_sparse_surrogate.verify`: ``unsat`` (the property holds) or ``sat``
   with a counterexample checked on the network;
4. run the same three instances as a VNN-COMP benchmark folder with the ``gss-verify`` command
   (here through its Python entry point), which writes ``results.csv`` and result files.

A VNN-LIB property states what a *counterexample* looks like, so ``unsat`` means verified.
"""

import tempfile
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from gurobi_sparse_surrogate import load_onnx, load_vnnlib, verify
from gurobi_sparse_surrogate.applications.cli import main as gss_verify
from gurobi_sparse_surrogate.datasets import load_digits, train_classifier

torch.set_num_threads(1)
folder = Path(tempfile.mkdtemp(prefix="gss_verify_"))

# %%
# A 64-16-16-10 classifier of scikit-learn's 8x8 digits, preceded by the normalisation
# ``(x - mean) / std`` that ONNX files often carry as ``Sub`` and ``Div`` nodes.
X, y = load_digits()
mean, std = float(X.mean()), float(X.std())
classifier = train_classifier((X - mean) / std, y, hidden=(16, 16), epochs=15, seed=0)


class Normalize(nn.Module):
    def forward(self, x):
        return (x - mean) / std


network = nn.Sequential(Normalize(), *classifier).eval()
onnx_path = folder / "onnx" / "digits.onnx"
onnx_path.parent.mkdir()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
    torch.onnx.export(network, torch.zeros(1, 64), str(onnx_path), dynamo=False)

# %%
# Three properties around the first image of class 3: inputs within ``eps`` of it (and in
# ``[0, 1]``), and outputs where some other class scores at least as high as the true one.
image = X[np.flatnonzero(y == 3)[0]]
label = int(network(torch.tensor(image[None], dtype=torch.float32)).argmax())


def write_property(path: Path, eps: float) -> None:
    lines = [f"; L-infinity ball of radius {eps} around a digit of class {label}"]
    lines += [f"(declare-const X_{i} Real)" for i in range(64)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(10)]
    for i, value in enumerate(image):
        lines.append(f"(assert (>= X_{i} {max(float(value) - eps, 0.0)!r}))")
        lines.append(f"(assert (<= X_{i} {min(float(value) + eps, 1.0)!r}))")
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label)
    lines.append(f"(assert (or {others}))")
    path.write_text("\n".join(lines) + "\n")


(folder / "vnnlib").mkdir()
properties = {eps: folder / "vnnlib" / f"digit_eps_{eps}.vnnlib" for eps in (0.05, 0.09, 0.1)}
for eps, path in properties.items():
    write_property(path, eps)

# %%
# Load and verify. The loaded network maps flat inputs ``X_0 ... X_63`` to the outputs
# ``Y_0 ... Y_9``; its first layer absorbed the normalisation.
net = load_onnx(onnx_path)
print("loaded:", [type(m).__name__ for m in net])
results = {}
for eps, path in properties.items():
    prop = load_vnnlib(path, n_inputs=64, n_outputs=10)
    results[eps] = result = verify(net, prop, time_limit=30)
    print(f"eps = {eps}: verdict: {result.summary()}")
    stages = Counter(
        d["status"] + (f" by {d['decided_by']}" if d["decided_by"] else "")
        for d in result.disjuncts
    )
    print("    disjuncts:", dict(stages))

# %%
# A ``sat`` verdict comes with a counterexample, checked with a float64 forward pass of the
# network: inside the box, and the true class is overtaken. The result file is VNN-COMP's.
sat = next((r for r in results.values() if r.status == "sat"), None)
if sat is not None:
    print(f"counterexample classified as {int(sat.y.argmax())}, not {label}")
    print("result file starts with:", sat.to_vnncomp().splitlines()[:3])
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
    panels = [(image, "digit"), (sat.x, "counterexample"), (sat.x - image, "difference")]
    for ax, (picture, title) in zip(axes, panels, strict=True):
        ax.imshow(picture.reshape(8, 8), cmap="gray" if title != "difference" else "coolwarm")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    plt.show()

# %%
# The same instances as a benchmark folder: ``instances.csv`` lists the network, the property
# and the timeout of each instance. ``gss-verify --instances instances.csv --results
# results.csv`` (or ``python -m gurobi_sparse_surrogate ...``) runs them with a progress bar,
# appends one row per instance to ``results.csv`` as it goes (a rerun resumes) and prints a
# summary table. Its exit code is 0 when every instance got a verdict.
(folder / "instances.csv").write_text(
    "".join(f"onnx/digits.onnx,vnnlib/{path.name},30\n" for path in properties.values())
)
code = gss_verify(
    [
        "--instances",
        str(folder / "instances.csv"),
        "--results",
        str(folder / "results.csv"),
        "--result-dir",
        str(folder / "results"),
    ]
)
print("exit code:", code)
print((folder / "results.csv").read_text())
