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
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]

templates_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
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

# -- sphinx-gallery ------------------------------------------------------------------------
# Every examples/plot_*.py runs once, at build time, in this process: its printed output and
# matplotlib figures are what the gallery shows (nothing is pasted). The test suite builds
# the docs with -W, so an example that fails fails the tests.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(ROOT, "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "ignore_pattern": r"__init__\.py",
    "plot_gallery": "True",
    "abort_on_example_error": True,
    # run every example on every build: output from an earlier version of the package is
    # never shown (an example whose file did not change is still re-run)
    "run_stale_examples": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "line_numbers": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "capture_repr": (),
    "show_memory": False,
    "min_reported_time": 1,
    "show_signature": False,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_static_path: list[str] = []
html_title = f"gurobi-sparse-surrogate {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "install": [], "benchmarks": []}

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

suppress_warnings: list[str] = []
