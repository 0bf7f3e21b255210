"""Build the documentation, which runs every example once (sphinx-gallery), and check the pages.

The examples are not run a second time on their own: the docs build executes each
``examples/plot_*.py`` in the build process, fails on the first error (``-W`` and
``abort_on_example_error``), and writes the printed output and the matplotlib figures into
the example's page. The checks below read those pages: every example has one, with the lines
it must print and, for the examples that draw, its figures.
"""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 600  # seconds for the whole build, generous for loaded CI machines

# example -> (a line it must print, number of figures it must draw at least)
EXPECTED = {
    "plot_embed_pruned_network.py": ("this package, pruned network", 1),
    "plot_surrogate_swap.py": ("restored model:", 2),
    "plot_adversarial_mnist.py": ("find_adversarial: adversarial", 1),
    "plot_function_maximization.py": ("dense output at r.x:", 1),
    "plot_bound_tightening.py": ("unstable per hidden layer", 1),
    "plot_benchmark_scatter.py": ("time ratio", 1),
    "plot_verify_onnx_vnnlib.py": ("eps = 0.1: verdict: sat", 1),
}


def example_scripts() -> list[Path]:
    return sorted(EXAMPLES.glob("plot_*.py"))


def test_examples_follow_the_gallery_layout():
    assert (EXAMPLES / "GALLERY_HEADER.rst").is_file()
    for script in example_scripts():
        source = script.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(source))
        assert docstring, f"{script.name} has no module docstring"
        title, underline = docstring.splitlines()[:2]
        assert title and set(underline) == {"="}, f"{script.name}: docstring must open with a title"
        assert "torch.set_num_threads(1)" in source, script.name


def test_no_pasted_output_in_the_docs():
    """Output shown in the docs comes from the build (the gallery) or from files a command
    writes into ``docs/generated`` (the benchmark findings): no example included as text with
    its output pasted below it."""
    for page in (ROOT / "docs").glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        for included in re.findall(r"literalinclude::\s*(\S+)", text):
            assert included.startswith("generated/"), f"{page.name} includes {included}"
        assert not re.search(r"Output of (one|a) run", text), page.name


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    # the docs extra is part of a full (dev, docs) install: a missing package fails, not skips
    import matplotlib  # noqa: F401
    import numpydoc  # noqa: F401
    import pydata_sphinx_theme  # noqa: F401
    import sphinx  # noqa: F401
    import sphinx_copybutton  # noqa: F401
    import sphinx_gallery  # noqa: F401

    out = tmp_path_factory.mktemp("docs")
    # Not under coverage (its subprocess patch passes COVERAGE_PROCESS_CONFIG on): the build
    # runs every example in one process, which crashed once with SIGSEGV under the tracer in
    # CI, and the examples' code paths are measured by the tests of the package itself.
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
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
            str(out / "doctrees"),
            str(ROOT / "docs"),
            str(out / "html"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, completed.stderr[-8000:]
    return out / "html"


def test_docs_build_without_warnings(built_docs):
    assert (built_docs / "index.html").is_file()
    assert (built_docs / "api.html").is_file()
    assert (built_docs / "auto_examples" / "index.html").is_file()
    assert (built_docs / "verification.html").is_file()


@pytest.mark.parametrize("script", [p.name for p in example_scripts()])
def test_every_example_ran_in_the_gallery(built_docs, script):
    page = built_docs / "auto_examples" / script.replace(".py", ".html")
    assert page.is_file(), f"the gallery has no page for {script}"
    text = html.unescape(page.read_text(encoding="utf-8"))
    stem = script.removesuffix(".py")
    images = sorted((built_docs / "_images").glob(f"sphx_glr_{stem}_*.png"))
    images = [i for i in images if "thumb" not in i.name]
    expected, figures = EXPECTED.get(script, (None, 0))
    if expected is not None:
        assert expected in text, f"{script}: {expected!r} not in its page"
    assert len(images) >= figures, f"{script} drew {len(images)} figures, expected {figures}"


def test_install_instructions_agree():
    """README, docs/install.rst and .ci/setup tell one story about a CPU-only torch."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = (ROOT / "docs" / "install.rst").read_text(encoding="utf-8")
    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    pin = re.search(r"torch==([0-9.]+)", setup).group(1)
    for text in (readme, install):
        assert "https://download.pytorch.org/whl/cpu" in text
        assert f"torch=={pin}" in text
        assert f"torch-{pin}+cpu" in text
