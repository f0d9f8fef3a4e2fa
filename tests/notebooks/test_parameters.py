"""Strict notebook parameters and recorded results (no kernel: fast)."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from workbench.errors import ConfigError
from workbench.reporting import (expand_grid, format_summary, load_grid, notebook_parameters, read_results, record,
                                 validate_parameters)
from workbench.reporting.record import METADATA_KEY

from . import NOTEBOOKS

CELL = '''
n: int = 10  # number of things
x: float = 0.5
name: str = "euler"
flag: bool = False
nfe_list: list[int] = [4, 8]
maybe: int | None = None
kind: Literal["a", "b"] = "a"
pair: tuple[int, str] = (1, "a")
plain = 3
'''


@pytest.fixture
def nb_path(tmp_path):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = new_code_cell(CELL)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [new_code_cell("from typing import Literal"), cell, new_code_cell("print(n)")]
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_schema_reads_types_defaults_and_help(nb_path):
    s = notebook_parameters(nb_path)
    assert list(s) == ["n", "x", "name", "flag", "nfe_list", "maybe", "kind", "pair", "plain"]
    assert (s["n"].annotation, s["n"].default, s["n"].help) == ("int", 10, "number of things")
    assert s["nfe_list"].annotation == "list[int]" and s["nfe_list"].default == [4, 8]
    assert s["plain"].annotation == "int"  # unannotated: the type of its default
    assert s["maybe"].default is None


def test_text_values_are_parsed_by_declared_type(nb_path):
    got = validate_parameters(nb_path, {"n": "20", "x": "1", "name": "7", "flag": "true", "nfe_list": "4,16",
                                        "maybe": "None", "kind": "b", "pair": "(2, 'z')"}, from_text=True)
    assert got == {"n": 20, "x": 1.0, "name": "7", "flag": True, "nfe_list": [4, 16], "maybe": None, "kind": "b",
                   "pair": (2, "z")}
    assert isinstance(got["x"], float)
    assert validate_parameters(nb_path, {"nfe_list": "[8, 32]"}, from_text=True) == {"nfe_list": [8, 32]}


@pytest.mark.parametrize("values, field", [
    ({"nn": 1}, "nn"),                 # unknown name (papermill would inject it silently)
    ({"n": 1.5}, "n"), ({"n": True}, "n"), ({"n": "3"}, "n"),
    ({"x": "fast"}, "x"), ({"flag": 1}, "flag"),
    ({"nfe_list": [4, "8"]}, "nfe_list"), ({"nfe_list": 4}, "nfe_list"),
    ({"kind": "c"}, "kind"), ({"pair": (1, 2)}, "pair"), ({"maybe": 1.0}, "maybe"),
])
def test_unknown_or_ill_typed_parameters_are_rejected(nb_path, values, field):
    with pytest.raises(ConfigError) as exc:
        validate_parameters(nb_path, values)
    assert str(exc.value).startswith(field)
    if field == "nn":
        assert "declared parameters: n: int, x: float" in str(exc.value)


def test_missing_parameters_cell_is_an_error(tmp_path):
    nb = new_notebook()
    nb.cells = [new_code_cell("a = 1")]
    nbformat.write(nb, str(tmp_path / "q.ipynb"))
    with pytest.raises(ConfigError, match="parameters"):
        notebook_parameters(tmp_path / "q.ipynb")


def test_shipped_notebooks_declare_typed_parameters():
    for path in NOTEBOOKS:
        schema = notebook_parameters(path)
        assert "seed" in schema or "seeds" in schema, path.name
        for p in schema.values():  # every knob is annotated and its default conforms
            assert p.check(p.default) == p.default


def test_record_outside_a_kernel_and_read_back_in_order(capsys):
    import torch

    assert record({"b": torch.tensor(0.123456789, dtype=torch.float64)}, a=3, c="x") is None
    assert capsys.readouterr().out.splitlines() == ["b  0.1235", "a  3", "c  x"]
    with pytest.raises(ConfigError, match="^bad"):
        record(bad=[1, 2])
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {"text/plain": ""}, "metadata": {METADATA_KEY: [["z", 1], ["a", 2]]}}]},
        {"cell_type": "code", "outputs": [
            {"output_type": "display_data", "data": {}, "metadata": {METADATA_KEY: [["z", 5]]}}]}]}
    got = read_results(json.loads(json.dumps(nb, sort_keys=True)))
    assert list(got.items()) == [("z", 5), ("a", 2)]


def test_grid_files_and_expansion(tmp_path):
    (tmp_path / "g.yaml").write_text("notebook: nb.ipynb\nparameters: {n: 3}\ngrid: {a: [1, 2], b: [x, y]}\n")
    (tmp_path / "g.toml").write_text('notebook = "nb.ipynb"\n[parameters]\nn = 3\n[grid]\na = [1, 2]\nb = ["x", "y"]\n')
    for name in ("g.yaml", "g.toml"):
        nb, fixed, grid = load_grid(tmp_path / name)
        assert nb == str(tmp_path / "nb.ipynb") and fixed == {"n": 3}
        sets = expand_grid(grid, fixed)
        assert sets == [{"n": 3, "a": 1, "b": "x"}, {"n": 3, "a": 1, "b": "y"},
                        {"n": 3, "a": 2, "b": "x"}, {"n": 3, "a": 2, "b": "y"}]
    (tmp_path / "bad.yaml").write_text("grid: {a: [1]}\nextra: 1\n")
    with pytest.raises(ConfigError, match="extra"):
        load_grid(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="^a"):
        expand_grid({"a": [1]}, {"a": 2})


def test_format_summary_keeps_failed_rows():
    rows = [{"run": 0, "s": "euler", "status": "ok", "err": 0.123456, "error": ""},
            {"run": 1, "s": "x", "status": "failed", "error": "cell [3]: UnknownNameError: ..."}]
    table = format_summary(rows).splitlines()
    assert table[0] == "| run | s | status | err | error |"
    assert table[2] == "| 0 | euler | ok | 0.1235 |  |"
    assert table[3].startswith("| 1 | x | failed |  | cell [3]: UnknownNameError")
