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
    code, first = _run(tmp_path, "a", "--search-solver", "32", "--save-fit", str(fits),
                       *[a for kv in small for a in ("--search-param", kv)])
    text = capsys.readouterr().out
    assert code == 0 and "searched solver" in text and "steps: " in text and "fits: " in text
    saved = load_fits(str(fits))
    assert [f.what for f in saved] == ["usf"] and saved[0].params["generations"] == 2
    assert first["config"]["solver"] == "nonstationary"
    code, again = _run(tmp_path, "b", "--load-fit", str(fits))
    assert code == 0 and "loaded usf fit" in capsys.readouterr().out
    assert again["config"] == first["config"] and again["summary"]["error"] == first["summary"]["error"]
    assert main(["run", "--nfe", "6", "--load-fit", str(fits), "--out", ""]) == 2  # another NFE: one line
    assert "--load-fit" in capsys.readouterr().err


def test_saved_grid_and_solver_fits_apply_in_order(tmp_path):
    from workbench.experiment import Experiment
    from workbench.fitting import GridFit, NSFit
    from workbench.fitting.saved import apply_fit, save_fits
    from workbench.solvers import linearize
    from dataclasses import asdict

    exp = Experiment(solver="euler", nfe=4, n_samples=16)
    times = [0.0, 0.2, 0.5, 0.8, 1.0]
    grid = GridFit("grid", {"times": times}, {"times": [0.0, 0.25, 0.5, 0.75, 1.0]}, 0.1, 0.2, 0.1, 0.2, True, 5, 20)
    c = asdict(linearize("euler", exp._interpolant, 4, grid=__import__("torch").tensor(times, dtype=__import__("torch").float64)))
    ns = NSFit("nonstationary", c, c, 0.1, 0.1, 0.1, 0.1, False, 0, 0)
    path = tmp_path / "f.json"
    save_fits(str(path), [grid, ns])
    a, b = load_fits(str(path))
    assert a == grid and b == ns
    e1 = apply_fit(exp, a)
    assert e1.schedule == "explicit" and list(e1.schedule_params["times"]) == times
    e2 = apply_fit(e1, b)
    assert e2.solver == "nonstationary"
    assert float((e2.run().samples - e1.run().samples).abs().max()) < 1e-5  # euler on that grid, twice
    with pytest.raises(ConfigError, match="--load-fit"):
        apply_fit(Experiment(solver="euler", nfe=6), a)


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
