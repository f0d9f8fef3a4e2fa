"""Report HTML a colleague can read offline: maths as MathML, no script from the network, a provenance header.

nbconvert's default export loads MathJax and require.js from a CDN, so without a network the maths stays raw
``$L_2$``. :func:`export_offline_html` instead

* converts every ``$…$``, ``$$…$$``, ``\\(…\\)`` and ``\\[…\\]`` of the markdown cells to MathML on the server
  (``latex2mathml``), which browsers render natively — no JavaScript, nothing fetched; a formula the converter
  cannot read stays as TeX in a ``<code>`` span (and is counted);
* drops the template's network scripts (MathJax, require.js, mermaid, the widget manager);
* puts a status/provenance header at the top of the page: status, error, parameters given and effective,
  package versions, the git commit of the workbench and the notebook's SHA-256.

Code spans and fenced code blocks are left alone, and an escaped ``\\$`` is not a delimiter.
"""
from __future__ import annotations

import hashlib
import html as _html
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}
<style>
.wb-header { font-family: system-ui, sans-serif; font-size: 13px; margin: 12px auto; max-width: 1100px;
             border: 1px solid #ccc; border-left: 6px solid #888; padding: 8px 14px; background: #fafafa; }
.wb-header.wb-ok { border-left-color: #2e7d32; } .wb-header.wb-failed { border-left-color: #c62828; }
.wb-header.wb-interrupted { border-left-color: #ef6c00; }
.wb-header table { border-collapse: collapse; } .wb-header td { padding: 1px 10px 1px 0; vertical-align: top; }
.wb-header code { font-size: 12px; } math[display="block"] { margin: 0.6em 0; }
</style>
{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
{{ resources.workbench_header }}
{%- endblock body_header -%}
"""

_CODE = re.compile(r"(^```.*?^```[ \t]*$|^~~~.*?^~~~[ \t]*$|`+[^`]*?`+)", re.S | re.M)
_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$(?![\s$])(.+?)(?<![\s\\])\$(?!\d)",
                   re.S)


def _to_mathml(tex: str, display: bool) -> Tuple[str, bool]:
    """(MathML, True) for ``tex``, or (an escaped ``<code>`` fallback, False) when it cannot be converted."""
    try:
        from latex2mathml.converter import convert

        return convert(tex.strip(), display="block" if display else "inline"), True
    except Exception:  # noqa: BLE001 - any converter failure keeps the TeX readable
        return f'<code class="tex">{_html.escape(tex)}</code>', False


def markdown_math_to_mathml(text: str) -> Tuple[str, int, int]:
    """Replace the maths of one markdown source by MathML → ``(text, converted, left as TeX)``.

    Code (fenced blocks and backtick spans) is not touched. Display maths (``$$…$$``, ``\\[…\\]``) becomes
    ``<math display="block">``, inline maths (``$…$``, ``\\(…\\)``) ``display="inline"``; ``$`` followed by a space
    or preceded by a backslash is not a delimiter, nor is a closing ``$`` followed by a digit (``$5 and $6``).
    """
    counts = [0, 0]

    def math(m: "re.Match[str]") -> str:
        display = m.group(1) is not None or m.group(2) is not None
        tex = next(g for g in m.groups() if g is not None)
        out, ok = _to_mathml(tex, display)
        counts[0 if ok else 1] += 1
        return out

    parts = _CODE.split(text)
    out = [p if i % 2 else _MATH.sub(math, p) for i, p in enumerate(parts)]
    return "".join(out), counts[0], counts[1]


def notebook_sha256(path: Union[str, Path]) -> str:
    """SHA-256 of a notebook file's bytes (the notebook as given, before parameters were injected)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit(where: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """``{"commit", "dirty"}`` of the git checkout holding ``where`` (default: the workbench package), or
    ``{"commit": None, "reason": ...}`` when it is not in a git checkout."""
    folder = Path(where) if where is not None else Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "reason": (commit.stderr.strip().splitlines() or ["not a git checkout"])[-1]}
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "reason": f"{type(exc).__name__}: {exc}"}


def _value(v: Any) -> str:
    return _html.escape(json.dumps(v, default=str) if not isinstance(v, str) else v)


def provenance_header(record: Mapping[str, Any]) -> str:
    """The HTML status/provenance block for a ``run.json`` record."""
    status = str(record.get("status", "unknown"))
    given = record.get("parameters") or {}
    effective = record.get("effective_parameters") or {}
    rows = [("status", f"<b>{_html.escape(status)}</b>" + (f" — {_html.escape(str(record['error']))}"
                                                            if record.get("error") else "")),
            ("notebook", f"<code>{_html.escape(str(record.get('notebook', '')))}</code>"),
            ("notebook sha256", f"<code>{_html.escape(str(record.get('notebook_sha256', '')))}</code>")]
    git = record.get("git") or {}
    if git.get("commit"):
        rows.append(("git commit", f"<code>{git['commit']}</code>" + (" (with uncommitted changes)"
                                                                     if git.get("dirty") else "")))
    else:
        rows.append(("git commit", f"unknown ({_html.escape(str(git.get('reason', 'not recorded')))})"))
    rows.append(("parameters given", ", ".join(f"<code>{_html.escape(k)}={_value(v)}</code>"
                                               for k, v in given.items()) or "none (defaults)"))
    rows.append(("effective parameters", ", ".join(
        f"<code>{_html.escape(k)}={_value(v)}</code>" + (" (given)" if k in given else "")
        for k, v in effective.items())))
    if record.get("started"):
        rows.append(("started", _html.escape(str(record["started"])) + (
            f", {record['seconds']:.1f} s" if isinstance(record.get("seconds"), (int, float)) else "")))
    rows.append(("versions", ", ".join(f"{_html.escape(k)} {_html.escape(str(v))}"
                                       for k, v in (record.get("versions") or {}).items())))
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return (f'<section class="wb-header wb-{_html.escape(status)}" id="workbench-provenance">'
            f"<table>{body}</table></section>")


def export_offline_html(executed: Union[str, Path], html_path: Union[str, Path],
                        record: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Export an executed notebook to one self-contained HTML file readable offline.

    Returns ``{"html": path, "math_converted": n, "math_left_as_tex": m}``.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    converted = left = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, c, n = markdown_math_to_mathml(cell.source)
            converted, left = converted + c, left + n
    nb.metadata.pop("widgets", None)
    exporter = HTMLExporter(extra_loaders=[DictLoader({"workbench_offline.html.j2": _TEMPLATE})],
                            template_file="workbench_offline.html.j2")
    header = provenance_header(record) if record is not None else ""
    body, _ = exporter.from_notebook_node(nb, resources={"workbench_header": header})
    Path(html_path).write_text(body, encoding="utf-8")
    return {"html": str(html_path), "math_converted": converted, "math_left_as_tex": left}


__all__ = ["markdown_math_to_mathml", "notebook_sha256", "git_commit", "provenance_header", "export_offline_html"]
