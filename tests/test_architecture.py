"""The layout's own rules: no private gurobi-ml imports, no import cycle in the benchmark
reports, every subpackage says what lives in it, and options that are not accepted fail."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gurobi_sparse_surrogate"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add("." * node.level + node.module)
    return found


def test_no_private_gurobi_ml_module_is_imported():
    private = re.compile(r"^gurobi_ml(\.\w+)*\._")
    for path in PACKAGE.rglob("*.py"):
        bad = [m for m in imported_modules(path) if private.match(m)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_report_and_plots_do_not_import_each_other_back():
    plots = imported_modules(ROOT / "benchmarks" / "plots.py")
    assert ".report" not in plots and "benchmarks.report" not in plots


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_subpackage_says_what_lives_there(package):
    module = importlib.import_module(f"gurobi_sparse_surrogate.{package}")
    doc = (module.__doc__ or "").strip()
    assert doc and len(doc.splitlines()) <= 3, package


def test_benchmark_call_refuses_options_the_target_does_not_take():
    from benchmarks.methods import _call

    def target(network, domain, *, time_limit=1.0):
        return network, domain, time_limit

    assert _call(target, 1, 2, time_limit=3.0) == (1, 2, 3.0)
    with pytest.raises(TypeError, match=r"does not accept \['bounds'\]"):
        _call(target, 1, 2, time_limit=3.0, bounds="lp")


def test_misspelled_attack_option_names_it():
    import numpy as np
    import torch

    from gurobi_sparse_surrogate import Box, InvalidOptionError, find_adversarial, maximize_output

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    box = Box(np.zeros(3), np.ones(3))
    with pytest.raises(
        InvalidOptionError, match=r"unknown attack option 'step'; did you mean 'steps'"
    ):
        find_adversarial(net, np.full(3, 0.5), box, attack_options={"step": 3})
    with pytest.raises(InvalidOptionError, match="restarts must be"):
        maximize_output(net, box, attack_options={"restarts": -1})
