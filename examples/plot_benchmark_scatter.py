"""
A tiny benchmark: dense against surrogate, time to the first adversarial input
==============================================================================

The benchmark suite (``python -m benchmarks``, see :doc:`../benchmarks`) runs methods side by
side on the same instances and reports ratios and counts. This example runs a very small
version of its verification suite in the documentation build: three MNIST-18 images with the
2x32 classifier and L1 balls of radius about 5, four methods, one second per run:

* ``gurobi-ml``: gurobi-ml's own dense embedding, no bounds of its own;
* ``paper-0.8``: the paper's pipeline, an 80%-pruned network embedded with gurobi-ml;
* ``dense``: this package's embedding of the dense network (bounds, stable neurons removed);
* ``surrogate-0.8``: this package's surrogate swap with an 80%-pruned surrogate and fallback.

Every run is judged on the dense network. The figure is the report's log-log scatter of the
reference method's time (x) against the pruned one's (y): below the diagonal the pruned
network found a dense-adversarial input first. A run that found nothing within the limit is
drawn beyond the dotted time-limit lines. Three instances say nothing about which method is
faster; the paper's profile (``python -m benchmarks run --profile paper``) does.
"""

import tempfile
from pathlib import Path

import torch

from benchmarks.plots import scatter_verification_figure
from benchmarks.report import load_results, suite_table
from benchmarks.runner import run_benchmark
from benchmarks.suites import Profile, method, verification_instances

torch.set_num_threads(1)

# %%
# The profile: instances and methods, each run limited to one second.
profile = Profile(
    "docs",
    tuple(verification_instances([18], [(32, 32)], 3)),
    (
        method("gurobi-ml"),
        method("paper", rate=0.8),
        method("dense"),
        method("surrogate", rate=0.8),
    ),
    time_limit=1.0,
    description="three images, four methods, for the documentation",
)
for instance in profile.instances:
    print(instance.id)

# %%
# Run it in this process (``jobs=1``) into a results file of JSON lines, then load it.
with tempfile.TemporaryDirectory() as folder:
    results = Path(folder) / "results.jsonl"
    run_benchmark(profile, results, jobs=1, cache_dir=folder, progress=False)
    frame = load_results(results)
print(frame[["instance", "method", "status", "time_to_first"]].to_string(index=False))

# %%
# The report's table, reduced to a few columns: found/runs, and the time ratio against
# gurobi-ml (median over the instances both solved; below 1 is faster than gurobi-ml).
table = suite_table(frame, "verification")
print(table[["method", "runs", "found", "median_ratio", "n_ratio"]].to_string(index=False))
print("time ratio: method / gurobi-ml time to the first dense-adversarial input")

# %%
# The scatter, as ``python -m benchmarks report`` draws it.
figure = scatter_verification_figure(frame)
