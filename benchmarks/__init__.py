"""The benchmark suite of gurobi-sparse-surrogate (issue #5).

Run from the repository root::

    python -m benchmarks quick                       # quick profile, report, table on stdout
    python -m benchmarks run --profile quick --output results/quick.jsonl
    python -m benchmarks report results/quick.jsonl --out results/quick/

Two suites (the paper's applications): ``verification`` (first input adversarial for the dense
MNIST classifier inside an L1 ball) and ``maximization`` (largest output of a random ReLU network
over ``[0, 1]^n``). Every method runs on the same instances in the same run and is judged on the
dense network; results are appended one JSON line per (suite, instance, method) and a rerun
resumes. See :mod:`benchmarks.suites` (profiles), :mod:`benchmarks.methods` (methods),
:mod:`benchmarks.runner` (execution) and :mod:`benchmarks.report` (tables and plots).
"""

from .suites import PROFILES, Instance, MethodSpec, Profile, get_profile

__all__ = ["PROFILES", "Instance", "MethodSpec", "Profile", "get_profile"]
