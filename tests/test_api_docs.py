"""The API reference documents every public name of the package."""

from __future__ import annotations

import importlib
import inspect
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


def _documented_parameters(doc: str | None) -> set[str] | None:
    """The names a numpydoc ``Parameters`` section lists (``a, b : type`` lists two)."""
    doc = inspect.cleandoc(doc or "")
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, re.S | re.M)
    if section is None:
        return None
    names = set()
    for line in section.group(1).splitlines():
        if line and not line.startswith(" "):
            head = line.split(" :")[0].rstrip(":")
            names.update(name.strip().lstrip("*") for name in head.split(","))
    return names


def test_every_parameter_of_a_public_function_is_documented():
    """find_adversarial's proof_steps was missing from its Parameters section."""
    undocumented = {}
    for name in gurobi_sparse_surrogate.__all__:
        obj = getattr(gurobi_sparse_surrogate, name)
        if not inspect.isfunction(obj):
            continue
        signature = inspect.signature(obj)
        params = [
            p.name
            for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        listed = _documented_parameters(obj.__doc__) or set()
        missing = [p for p in params if p not in listed]
        if missing:
            undocumented[name] = missing
    assert not undocumented, f"document these parameters: {undocumented}"
