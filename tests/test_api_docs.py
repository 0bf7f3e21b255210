"""The API reference documents every public name of the package."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import gurobi_sparse_surrogate

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
DIRECTIVE = re.compile(r"^\.\. auto(?:function|class|exception|data)::\s+(\S+)")


def documented_objects() -> list[object]:
    """The objects the api page documents with an autodoc directive."""
    current = "gurobi_sparse_surrogate"
    found = []
    for line in API.read_text(encoding="utf-8").splitlines():
        module = re.match(r"^\.\. currentmodule::\s+(\S+)", line)
        if module:
            current = module.group(1)
            continue
        match = DIRECTIVE.match(line)
        if not match:
            continue
        name = match.group(1)
        if not name.startswith("gurobi_sparse_surrogate"):
            name = f"{current}.{name}"
        path, _, attribute = name.rpartition(".")
        try:
            owner = importlib.import_module(path)
        except ImportError:  # a nested name such as module.Class.method
            owner_path, _, owner_name = path.rpartition(".")
            owner = getattr(importlib.import_module(owner_path), owner_name)
        found.append(getattr(owner, attribute))
    return found


def test_every_public_name_is_in_the_api_reference():
    documented = documented_objects()
    missing = [
        name
        for name in gurobi_sparse_surrogate.__all__
        if not any(getattr(gurobi_sparse_surrogate, name) is obj for obj in documented)
    ]
    assert not missing, f"add these public names to docs/api.rst: {missing}"
