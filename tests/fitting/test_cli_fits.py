"""`workbench run --search-solver N` (USF), `--save-fit FILE` and `--load-fit FILE`: a saved fit reloads into the
identical run (same samples), bad files are one readable line naming --load-fit."""
import json

import pytest

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.fitting.saved import load_fits


def _run(tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    code = main(["run", "--interpolant", "vp", "--t-start", "0.001", "--t-end", "0.999", "--solver", "dpmpp_2m",
                 "--nfe", "4", "--n-samples", "64", "--dtype", "float64", "--out", "", "--json", str(out), *extra])
    return code, json.loads(out.read_text()) if out.exists() else None


def test_search_save_and_reload(tmp_path, capsys):
    small = ["population=4", "generations=2", "children=6", "survivors=2", "subset=16", "refine_evals=10",
             'schedules=["logsnr"]']
    fits = tmp_path / "fits.json"
    code, first = _run(tmp_path, "a", "--fit-schedule", "32", "--search-solver", "32", "--save-fit", str(fits),
                       *[a for kv in small for a in ("--search-param", kv)])
    text = capsys.readouterr().out
    assert code == 0 and "searched solver" in text and "steps: " in text and "fits: " in text
    saved = load_fits(str(fits))
    assert [f.what for f in saved] == ["grid", "usf"] and saved[1].params["generations"] == 2
    assert first["config"]["solver"] == "nonstationary"
    code, again = _run(tmp_path, "b", "--load-fit", str(fits))
    assert code == 0 and "loaded usf fit" in capsys.readouterr().out
    assert again["config"] == first["config"] and again["summary"]["error"] == first["summary"]["error"]
    assert main(["run", "--nfe", "6", "--load-fit", str(fits), "--out", ""]) == 2  # another NFE: one line
    assert "--load-fit" in capsys.readouterr().err


def test_bad_fit_files_name_the_flag(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["run", "--load-fit", str(bad), "--out", ""]) == 2
    assert "--load-fit" in capsys.readouterr().err
    bad.write_text(json.dumps({"fits": []}))
    with pytest.raises(ConfigError, match="--load-fit"):
        load_fits(str(bad))
    with pytest.raises(ConfigError, match="--load-fit"):
        load_fits(str(tmp_path / "missing.json"))
