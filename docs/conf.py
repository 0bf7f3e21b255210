"""Sphinx configuration of the gurobi-sparse-surrogate documentation.

The build works offline: no intersphinx inventories, no remote themes.
Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import gurobi_sparse_surrogate  # noqa: E402

project = "gurobi-sparse-surrogate"
author = "gurobi-sparse-surrogate developers"
copyright = "2026, gurobi-sparse-surrogate developers"  # noqa: A001
release = gurobi_sparse_surrogate.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

templates_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# no intersphinx: the build must not need the network
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary -----------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
autodoc_mock_imports: list[str] = []
autosummary_generate = False  # tables only; the entries are documented in api.rst

# -- numpydoc ------------------------------------------------------------------------------
numpydoc_show_class_members = False  # members are documented with :members: where wanted
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML ----------------------------------------------------------------------------------
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"gurobi-sparse-surrogate {release}"
html_theme_options = {
    "description": "Optimization over trained (and sparse) ReLU networks with Gurobi",
    "fixed_sidebar": True,
}

# Examples are shown with literalinclude; they live outside the source directory.
suppress_warnings: list[str] = []
