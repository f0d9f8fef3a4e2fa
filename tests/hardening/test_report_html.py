"""Reports a colleague can read offline (issue 18, defect 11): maths as MathML, no network script, a provenance
header in the HTML and in run.json."""
from __future__ import annotations

import hashlib
import json
import re

import nbformat
import pytest

pytest.importorskip("latex2mathml", reason="the offline HTML export converts maths with latex2mathml")

from workbench.reporting.html import markdown_math_to_mathml  # noqa: E402
from workbench.reporting.report import run_report  # noqa: E402

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


def test_report_html_offline_with_provenance(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("k: int = 3")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("The mean $L_2$ distance and $$\\lVert x\\rVert^2$$"), params,
                nbformat.v4.new_code_cell("k2 = k * k")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    res = run_report(path, {"k": 4}, out_root=tmp_path / "reports")
    assert res.ok
    run = json.loads((tmp_path / "reports").glob("*/run.json").__next__().read_text())
    assert run["notebook_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "commit" in run["git"]  # a hex commit in a checkout, None with a reason elsewhere
    assert run["git"]["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", run["git"]["commit"])
    html = open(res.html, encoding="utf-8").read()
    assert not re.search(r"<script[^>]+src=\"https?:", html)  # nothing fetched from the network
    assert "mathjax" not in html.lower() and "require.min.js" not in html
    assert "$L_2$" not in html and html.count("<math ") == 2
    header = html[html.index('id="workbench-provenance"'):][:3000]
    for words in ("<b>ok</b>", run["notebook_sha256"], "k=4</code> (given)", "torch", "git commit"):
        assert words in header, words
