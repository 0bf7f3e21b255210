"""Run every example script and build the documentation.

Each example runs in a subprocess from the repository root and must exit with code 0 and print
its key result line. An example whose package API cannot be imported fails (it is not skipped):
every API an example uses is part of the package.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 300  # seconds per example, generous for loaded CI machines

# example -> (the API it needs as (module, attribute) pairs, a line it must print)
CASES = {
    "plot_embed_pruned_network.py": (
        [("gurobi_sparse_surrogate", "add_sparse_predictor_constr")],
        "this package, pruned network",
    ),
    "plot_surrogate_swap.py": (
        [("gurobi_sparse_surrogate", "SurrogateSwap")],
        "restored model:",
    ),
    "plot_adversarial_mnist.py": (
        [
            ("gurobi_sparse_surrogate", "find_adversarial"),
            ("gurobi_sparse_surrogate", "L1Ball"),
            ("gurobi_sparse_surrogate.datasets", "load_mnist"),
        ],
        "surrogate embedding:",
    ),
    "plot_function_maximization.py": (
        [
            ("gurobi_sparse_surrogate", "maximize_output"),
            ("gurobi_sparse_surrogate.datasets", "random_relu_network"),
        ],
        "dense output at r.x:",
    ),
    "plot_verify_onnx_vnnlib.py": (
        [
            ("gurobi_sparse_surrogate", "verify"),
            ("gurobi_sparse_surrogate", "load_onnx"),
            ("gurobi_sparse_surrogate", "load_vnnlib"),
        ],
        "eps = 0.1: verdict: sat",
    ),
    "plot_bound_tightening.py": (
        [("gurobi_sparse_surrogate.bounds.lp", "LPStage")],
        "unstable per hidden layer",
    ),
}


def _require(requirements: list[tuple[str, str]]) -> None:
    for module, attribute in requirements:
        try:
            getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            pytest.fail(f"the example needs {module}.{attribute}, which is missing: {error}")


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script):
    requirements, expected = CASES[script]
    _require(requirements)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, (
        f"{script} failed with code {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout[-3000:]}\n--- stderr ---\n{completed.stderr[-3000:]}"
    )
    assert expected in completed.stdout, completed.stdout[-3000:]


def test_examples_have_a_docstring_and_a_tutorial():
    tutorials = ROOT / "docs" / "tutorials"
    for script in CASES:
        source = (EXAMPLES / script).read_text(encoding="utf-8")
        assert source.lstrip().startswith('"""'), f"{script} has no module docstring"
        assert "torch.set_num_threads(1)" in source, script
        page = tutorials / (script.removeprefix("plot_").removesuffix(".py") + ".rst")
        assert page.is_file(), f"no tutorial page {page.name} for {script}"
        assert f"examples/{script}" in page.read_text(encoding="utf-8")


def test_docs_build_without_warnings(tmp_path):
    import numpydoc  # noqa: F401 - the docs extra is part of a full (dev, docs) install
    import sphinx  # noqa: F401

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "tutorials" / "surrogate_swap.html").is_file()
