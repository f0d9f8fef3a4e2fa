r"""The typed parameter schema of a notebook, and strict validation of parameter values against it.

A notebook declares its knobs in one code cell tagged ``parameters``, one annotated assignment per knob::

    interpolant: str = "linear"            # interpolant registry name
    nfe_list: list[int] = [4, 8, 16, 32]   # budgets to compare
    dim: int = 2

:func:`notebook_parameters` reads that cell with :mod:`ast` (no kernel is started) and returns one
:class:`Parameter` per name, with its annotation, its default and the trailing comment as help.
:func:`validate_parameters` then checks a mapping of values against it: an unknown name, or a value whose type
does not match the annotation, raises :class:`~workbench.errors.ConfigError` naming the parameter and what is
allowed — before anything runs (papermill itself injects unknown names silently).

Supported annotations: ``int``, ``float`` (ints are widened), ``str``, ``bool``, ``list[X]``, ``tuple[X, ...]``,
``dict[K, V]``, ``Optional[X]``, ``X | None``, ``Union[...]``, ``Literal[...]``, ``Any``. An assignment without an
annotation takes the type of its default.
"""
from __future__ import annotations

import ast
import io
import json
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import ConfigError

PARAMETERS_TAG = "parameters"


@dataclass(frozen=True)
class Parameter:
    """One declared notebook parameter.

    Attributes:
        name: the variable name.
        annotation: the annotation as written (``"list[int]"``), or the inferred type name of the default.
        default: the default value (a Python literal).
        help: the trailing comment of its line, if any.
    """

    name: str
    annotation: str
    default: Any
    help: str = ""

    def check(self, value: Any) -> Any:
        """Return ``value`` (ints widened to float where a float is declared) or raise a ConfigError."""
        ok, converted = _conforms(value, _annotation_ast(self.annotation))
        if not ok:
            raise ConfigError(self.name, f"expected {self.annotation}, got {value!r} ({type(value).__name__})")
        return converted

    def parse(self, text: str) -> Any:
        """Convert a command-line string to a value of this parameter's type (then :meth:`check` it)."""
        try:
            value = _parse_text(text, _annotation_ast(self.annotation))
        except ConfigError as exc:
            if exc.field != "parameter":
                raise
            raise ConfigError(self.name, str(exc)[len("parameter: "):]) from None
        return self.check(value)


def _load_notebook(notebook: Union[str, Path, Mapping]) -> Mapping:
    if isinstance(notebook, Mapping):
        return notebook
    path = Path(notebook)
    if not path.exists():
        raise ConfigError("notebook", f"file {str(path)!r} does not exist")
    if path.suffix != ".ipynb":
        raise ConfigError("notebook", f"expected a .ipynb file, got {str(path)!r}")
    try:
        with open(path, encoding="utf-8") as fh:
            nb = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("notebook", f"{str(path)!r} is not a valid notebook (JSON error: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        raise ConfigError("notebook", f"{str(path)!r} is not a valid notebook (expected a JSON object with 'cells')")
    return nb


def parameters_cell(notebook: Union[str, Path, Mapping]) -> Optional[str]:
    """The source of the cell tagged ``parameters`` (None when the notebook has none)."""
    nb = _load_notebook(notebook)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    return None


def _comments(source: str) -> Dict[int, str]:
    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):  # pragma: no cover - ast.parse reports the real error
        pass
    return out


def notebook_parameters(notebook: Union[str, Path, Mapping]) -> Dict[str, Parameter]:
    """The declared parameters of ``notebook`` (a path or a loaded notebook dict), in declaration order.

    Raises:
        ConfigError: the notebook has no ``parameters`` cell, or the cell holds something other than
            assignments of literal values.
    """
    source = parameters_cell(notebook)
    name = str(notebook) if not isinstance(notebook, Mapping) else "notebook"
    if source is None:
        raise ConfigError("notebook", f"{name} has no code cell tagged 'parameters'")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError("notebook", f"the parameters cell of {name} does not parse: {exc}") from None
    comments = _comments(source)
    params: Dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, annotation, value = node.target.id, ast.unparse(node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, annotation, value = node.targets[0].id, None, node.value
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring-like note
        else:
            raise ConfigError("notebook", f"line {node.lineno} of the parameters cell of {name} is not "
                                          f"'name: type = literal': {ast.unparse(node)!r}")
        try:
            default = ast.literal_eval(value)
        except ValueError:
            raise ConfigError(target, f"the default {ast.unparse(value)!r} in {name} is not a literal") from None
        if annotation is None:
            annotation = "Any" if default is None else type(default).__name__
        param = Parameter(target, annotation, default, comments.get(node.lineno, ""))
        params[target] = param.__class__(target, annotation, param.check(default), param.help)
    return params


def validate_parameters(notebook: Union[str, Path, Mapping, Dict[str, Parameter]], values: Mapping[str, Any],
                        from_text: bool = False) -> Dict[str, Any]:
    """Check ``values`` against the notebook's declared parameters; return the (converted) values.

    Args:
        notebook: a notebook path / dict, or the schema from :func:`notebook_parameters`.
        values: parameter name → value (or → command-line string when ``from_text``).
        from_text: parse string values by the declared type first (``"8"`` → 8, ``"[4, 8]"`` or ``"4,8"`` → [4, 8]).

    Raises:
        ConfigError: an unknown name (the message lists the declared ones), a value of the wrong type, or one
            that breaks its name's convention (:func:`workbench.reporting.semantics.check_value`: ``nfe_list 0``,
            an empty list, an unknown solver).
    """
    from .semantics import check_value

    schema = notebook if isinstance(notebook, dict) and all(isinstance(v, Parameter) for v in notebook.values()) \
        else notebook_parameters(notebook)  # type: ignore[arg-type]
    unknown = [k for k in values if k not in schema]
    if unknown:
        listing = ", ".join(f"{p.name}: {p.annotation}" for p in schema.values())
        raise ConfigError(unknown[0], f"is not a parameter of this notebook; declared parameters: {listing}")
    out = {}
    for key, value in values.items():
        p = schema[key]
        out[key] = check_value(key, p.parse(value) if from_text and isinstance(value, str) else p.check(value))
    return out


def describe_parameters(schema: Mapping[str, Parameter]) -> str:
    """One line per parameter: ``name: type = default  # help``."""
    lines = []
    for p in schema.values():
        line = f"  {p.name}: {p.annotation} = {p.default!r}"
        lines.append(line + (f"  # {p.help}" if p.help else ""))
    return "\n".join(lines)


# ---- type checking ------------------------------------------------------------------------------------------
_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _annotation_ast(annotation: str) -> ast.expr:
    try:
        return ast.parse(annotation, mode="eval").body
    except SyntaxError:
        raise ConfigError("notebook", f"cannot read the annotation {annotation!r}") from None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return ""


def _union_members(node: ast.expr) -> Optional[List[ast.expr]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return (_union_members(node.left) or [node.left]) + (_union_members(node.right) or [node.right])
    if isinstance(node, ast.Subscript) and _name(node.value) in ("Optional", "Union"):
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return list(args) + ([ast.Constant(None)] if _name(node.value) == "Optional" else [])
    return None


def _conforms(value: Any, node: ast.expr):
    """(ok, converted value) for ``value`` against the annotation ``node``."""
    members = _union_members(node)
    if members is not None:
        for m in members:
            ok, conv = _conforms(value, m)
            if ok:
                return True, conv
        return False, value
    name = _name(node)
    if name in ("Any", "object"):
        return True, value
    if name == "None":
        return value is None, value
    if name == "bool":
        return isinstance(value, bool), value
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return True, float(value)
    if name == "str":
        return isinstance(value, str), value
    if name in ("list", "List", "tuple", "Tuple", "Sequence"):
        if not isinstance(value, (list, tuple)):
            return False, value
        return True, (list(value) if name in ("list", "List", "Sequence") else tuple(value))
    if name in ("dict", "Dict", "Mapping"):
        return isinstance(value, dict), value
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer == "Literal":
            allowed = [ast.literal_eval(a) for a in args]
            hit = [a for a in allowed if a == value and type(a) is type(value)]
            return bool(hit), value
        if outer in ("list", "List", "Sequence", "tuple", "Tuple"):
            if not isinstance(value, (list, tuple)):
                return False, value
            if outer in ("tuple", "Tuple") and not (len(args) == 2 and isinstance(args[1], ast.Constant)
                                                     and args[1].value is Ellipsis):
                if len(args) != len(value):
                    return False, value
                pairs = list(zip(value, args))
            else:
                pairs = [(v, args[0]) for v in value]
            out = []
            for v, a in pairs:
                ok, conv = _conforms(v, a)
                if not ok:
                    return False, value
                out.append(conv)
            return True, (tuple(out) if outer in ("tuple", "Tuple") else out)
        if outer in ("dict", "Dict", "Mapping"):
            if not isinstance(value, dict) or len(args) != 2:
                return isinstance(value, dict), value
            out = {}
            for k, v in value.items():
                ok_k, k2 = _conforms(k, args[0])
                ok_v, v2 = _conforms(v, args[1])
                if not (ok_k and ok_v):
                    return False, value
                out[k2] = v2
            return True, out
    raise ConfigError("notebook", f"unsupported parameter annotation {ast.unparse(node)!r}; use int, float, str, "
                                  "bool, list[...], tuple[...], dict[...], Optional[...], Literal[...] or Any")


def _accepts_str(node: ast.expr) -> bool:
    members = _union_members(node)
    if members is not None:
        return any(_accepts_str(m) for m in members)
    if _name(node) in ("str", "Any", "object"):
        return True
    if isinstance(node, ast.Subscript) and _name(node.value) == "Literal":
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return any(isinstance(ast.literal_eval(a), str) for a in args)
    return False


def _is_sequence(node: ast.expr) -> bool:
    members = _union_members(node)
    if members is not None:
        return any(_is_sequence(m) for m in members)
    name = _name(node.value) if isinstance(node, ast.Subscript) else _name(node)
    return name in ("list", "List", "tuple", "Tuple", "Sequence")


def _literal(text: str) -> Any:
    t = text.strip()
    if t in ("None", "null", "~"):
        return None
    if t in ("True", "true"):
        return True
    if t in ("False", "false"):
        return False
    try:
        return ast.literal_eval(t)
    except (ValueError, SyntaxError):
        pass
    try:
        return json.loads(t)
    except ValueError:
        return text


def _parse_text(text: str, node: ast.expr) -> Any:
    """A command-line string → a Python value guided by the annotation (strings stay strings where allowed)."""
    value = _literal(text)
    if _accepts_str(node) and not _conforms_quiet(value, node):
        return text
    if _is_sequence(node) and not isinstance(value, (list, tuple)) and value is not None:
        parts = text.split(",")
        if text.strip() and any(not p.strip() for p in parts):
            raise ConfigError("parameter", f"the list {text!r} has an empty element; write values separated by "
                                           "single commas, e.g. 4,8,16")
        parts = [p for p in parts if p.strip()]
        elt = node.slice if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Tuple) else None
        return [(_parse_text(p.strip(), elt) if elt is not None else _literal(p)) for p in parts]
    return value


def _conforms_quiet(value: Any, node: ast.expr) -> bool:
    try:
        return _conforms(value, node)[0]
    except ConfigError:
        return False
