"""Reports a colleague can read offline (issue 18, defect 11): maths as MathML, no network script, a provenance
header in the HTML and in run.json."""
from __future__ import annotations

import hashlib
import re

import nbformat
import torch
import pytest

pytest.importorskip("latex2mathml", reason="the offline HTML export converts maths with latex2mathml")

from workbench.reporting.html import (export_offline_html, git_commit, markdown_math_to_mathml,  # noqa: E402
                                     notebook_sha256)

MATH_ROWS = [
    ("inline", "the $L_2$ error", 1, ["<msub><mi>L</mi><mn>2</mn></msub>", 'display="inline"']),
    ("display", "$$\\int_0^1 f\\,dt$$", 1, ['display="block"', "<msubsup>"]),
    ("brackets", "\\(a\\) and \\[b\\]", 2, ['display="inline"', 'display="block"']),
    ("prices", "cost $5 and $6", 0, ["cost $5 and $6"]),
    ("escaped", "a \\$ sign", 0, ["a \\$ sign"]),
    ("code-span", "`$x$` stays", 0, ["`$x$` stays"]),
    ("fenced", "```\n$x$\n```", 0, ["```\n$x$\n```"]),
    ("space-after-dollar", "$ x$", 0, ["$ x$"]),
]


@pytest.mark.parametrize("text,n,words", [r[1:] for r in MATH_ROWS], ids=[r[0] for r in MATH_ROWS])
def test_markdown_math_to_mathml(text, n, words):
    out, converted, left = markdown_math_to_mathml(text)
    assert (converted, left) == (n, 0)
    for w in words:
        assert w in out, out


def test_offline_html_with_provenance(tmp_path):
    """The export of an executed notebook: no script from the network, maths as MathML, the run record on top."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("The mean $L_2$ distance and $$\\lVert x\\rVert^2$$"),
                nbformat.v4.new_code_cell("k2 = 16", outputs=[nbformat.v4.new_output("stream", text="16\n")])]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    record = {"status": "failed", "error": "cell [3]: ValueError: boom", "notebook": str(path),
              "notebook_sha256": notebook_sha256(path), "git": git_commit(),
              "parameters": {"k": 4}, "effective_parameters": {"k": 4, "solver": "heun"},
              "versions": {"torch": "2.13.0", "python": "3.11"}, "started": "2026-01-01T00:00:00", "seconds": 1.5}
    out = export_offline_html(path, tmp_path / "tiny.html", record)
    assert (out["math_converted"], out["math_left_as_tex"]) == (2, 0)
    html = (tmp_path / "tiny.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    assert "mathjax" not in html.lower() and "require.min.js" not in html and "mermaid" not in html.lower()
    assert "$L_2$" not in html and html.count("<math ") == 2
    header = html[html.index('id="workbench-provenance"'):][:3000]
    assert html.index('id="workbench-provenance"') < html.index('class="jp-Cell jp-MarkdownCell')  # at the top of the page
    for words in ("<b>failed</b>", "ValueError: boom", hashlib.sha256(path.read_bytes()).hexdigest(),
                  "k=4</code> (given)", "solver=heun", "torch 2.13.0", "git commit"):
        assert words in header, words
    assert record["git"].get("commit") is None or re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"])


def test_log_range_keeps_the_top_decades():
    """A spectrum 1 … 1e-16 (a round-off tail) gets [1e-8/2, 3]; one within 8 decades keeps its minimum/2."""
    from workbench.plotting import log_range

    assert log_range([torch.tensor([1.0, 1e-3, 1e-16])]) == pytest.approx((0.5e-8, 3.0))
    assert log_range([torch.tensor([2.0, 1e-3]), torch.tensor([4.0, float("nan")])]) == pytest.approx((0.5e-3, 12.0))
    assert log_range([torch.tensor([0.0, -1.0])]) == (1e-8, 1.0)


def test_compare_points_draws_exact_rings_over_solver_dots():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from workbench.plotting import compare_points

    fig, ax = plt.subplots()
    exact = torch.zeros(5, 2)
    compare_points(ax, exact, exact + 0.01, label="heun")
    dots, rings = ax.collections
    assert dots.get_label() == "heun" and rings.get_label() == "exact" and rings.get_zorder() > dots.get_zorder()
    assert rings.get_facecolor().size == 0 or rings.get_facecolor()[0][3] == 0  # hollow: the dot shows through
    plt.close(fig)
