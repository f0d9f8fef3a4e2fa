"""Configurations are immutable values: interpolants, schedules and problems (issue 12, parts 4-6)."""
from __future__ import annotations

import ast
import copy
import gc
import json
import pickle
import threading
import weakref
from pathlib import Path

import pytest
import torch

import workbench
from workbench import interpolants, schedules
from workbench.config import Config, FrozenDict
from workbench.errors import ConfigError
from workbench.interpolants import base as interp_base
from workbench.problems import PROBLEMS

FAMILIES = {"interpolant": interpolants.INTERPOLANTS, "schedule": schedules.SCHEDULES, "problem": PROBLEMS}
ALL = [(fam, name) for fam, reg in FAMILIES.items() for name in reg.names()]


@pytest.fixture(params=ALL, ids=[f"{f}:{n}" for f, n in ALL])
def entry(request):
    fam, name = request.param
    return FAMILIES[fam], name, FAMILIES[fam].get(name)


@pytest.fixture
def config(entry):
    return entry[2]


def test_every_registered_configuration_is_a_config_with_the_registry_parameters(entry):
    reg, name, config = entry
    assert isinstance(config, Config)
    assert list(config.params()) == list(reg.parameters(name))


def test_setting_any_parameter_raises_and_names_it(config):
    before = repr(config)
    for field, value in config.params().items():
        with pytest.raises(ConfigError, match=rf"{field}: .*immutable.*replace\({field}=") as info:
            setattr(config, field, value)
        assert info.value.field == field
        with pytest.raises(ConfigError):
            delattr(config, field)
    with pytest.raises(ConfigError, match="immutable"):
        config.some_new_attribute = 1.0  # also no new public state
    with pytest.raises(ConfigError, match="immutable"):
        config.name = "renamed"
    assert repr(config) == before


def test_equal_configurations_hash_equal_and_replace_makes_a_new_value(entry):
    reg, name, config = entry
    twin = reg.get(name, **config.params())
    assert twin is not config and twin == config and hash(twin) == hash(config) and repr(twin) == repr(config)
    same = config.replace()
    assert same == config and same is not config
    assert len({config, twin, same}) == 1


def test_params_round_trip_through_json(config):
    data = json.loads(json.dumps(config.params()))
    again = type(config)(**data)
    assert again == config and hash(again) == hash(config)


def test_pickle_and_copy_keep_the_value(config):
    assert pickle.loads(pickle.dumps(config)) == config
    assert copy.deepcopy(config) == config and copy.copy(config) == config


@pytest.mark.parametrize("fam, name, changes, field", [
    ("interpolant", "vp", {"beta_max": 5.0}, "beta_max"),
    ("interpolant", "ve", {"sigma_max": 80.0}, "sigma_max"),
    ("interpolant", "sb", {"a": 0.5}, "a"),
    ("interpolant", "one_sided", {"path": "trig"}, "path"),
    ("schedule", "logsnr", {"lambda_min": -6.0}, "lambda_min"),
    ("schedule", "edm", {"rho": 5.0}, "rho"),
    ("schedule", "explicit", {"times": [0.0, 0.5, 1.0]}, "times"),
    ("problem", "gmm2d", {"n_modes": 4}, "n_modes"),
    ("problem", "gaussian", {"dim": 3}, "dim"),
])
def test_replace_changes_the_value_and_validates(fam, name, changes, field):
    a = FAMILIES[fam].get(name)
    b = a.replace(**changes)
    assert b != a and type(b) is type(a)
    assert b.params()[field] == (tuple(changes[field]) if isinstance(changes[field], list) else changes[field])
    assert {k: v for k, v in b.params().items() if k != field} == {k: v for k, v in a.params().items() if k != field}
    with pytest.raises(ConfigError, match="no parameter 'nope'"):
        a.replace(nope=1)


def test_replace_runs_the_constructor_validation():
    with pytest.raises(ConfigError, match="beta_max"):
        interpolants.get("vp").replace(beta_max=-1.0)
    with pytest.raises(ConfigError, match="times"):
        schedules.get("explicit").replace(times=[0.0, 0.0])
    with pytest.raises(ConfigError, match="n_modes"):
        PROBLEMS.get("gmm2d").replace(n_modes=2.5)


def test_tensor_and_list_parameters_become_tuples():
    g = schedules.get("explicit", times=torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64))
    assert g.times == (0.0, 0.25, 1.0) and g == schedules.get("explicit", times=[0.0, 0.25, 1.0])
    assert hash(g) == hash(schedules.get("explicit", times=(0.0, 0.25, 1.0)))
    d = FrozenDict(a=1)
    with pytest.raises(ConfigError):
        d["a"] = 2
    assert json.loads(json.dumps(d)) == {"a": 1} and hash(d) == hash(FrozenDict(a=1))


# ---- value-keyed coefficient cache ------------------------------------------------------------------------------
def test_equal_interpolants_share_one_cache_entry_and_mutation_cannot_go_stale():
    a, b = interpolants.get("vp"), interpolants.get("vp", beta_min=0.1, beta_max=20.0)
    assert a._float_cache is b._float_cache
    ca = a.coefficients(0.3)
    assert b.coefficients(0.3) is ca  # the same cached entry, computed once
    c = a.replace(beta_max=5.0)
    assert c._float_cache is not a._float_cache
    cc = c.coefficients(0.3)
    tensor = c.coefficients(torch.tensor(0.3, dtype=torch.float64))
    assert cc.signal == pytest.approx(float(tensor.signal), rel=1e-15) and cc.signal != ca.signal
    assert abs(ca.signal - 0.0844) < 1e-4 and abs(cc.signal - 0.5298) < 1e-4  # the numbers
    with pytest.raises(ConfigError):
        a.beta_max = 5.0
    assert a.coefficients(0.3).signal == ca.signal


def test_the_cache_keeps_no_interpolant_alive():
    I = interpolants.get("vp", beta_max=13.0)
    I.coefficients(0.3)
    I.conversion_singularity("noise", "velocity", 0.5)
    ref = weakref.ref(I)
    key = I.config_key()
    assert key in interp_base._FLOAT_CACHES
    del I
    gc.collect()
    assert ref() is None
    assert key not in interp_base._FLOAT_CACHES  # the per-value cache went with its last interpolant


def test_float_coefficients_are_thread_safe():
    times = [i / 997 for i in range(997)]
    expect = {t: float(interpolants.get("vp", beta_max=17.0).coefficients(torch.tensor(t, dtype=torch.float64)).signal)
              for t in times}
    errors = []

    def work(offset):
        I = interpolants.get("vp", beta_max=17.0)  # equal values, one shared cache
        for k in range(len(times)):
            t = times[(k * 7 + offset) % len(times)]
            if abs(I.coefficients(t).signal - expect[t]) > 1e-15:
                errors.append(t)

    threads = [threading.Thread(target=work, args=(o,)) for o in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


# ---- log-SNR inverse refuses out-of-range values ---------------------------------------------------------------
def test_t_from_log_snr_out_of_range_raises_with_the_range():
    I = interpolants.get("vp")
    lo, hi = I.log_snr_range()
    with pytest.raises(ConfigError, match=r"-5\.0588.*outside the log-SNR range \[-5\.02497") as info:
        I.t_from_log_snr(torch.tensor([-5.0588, 0.0], dtype=torch.float64))
    assert info.value.field == "log_snr"
    ve = interpolants.get("ve")
    with pytest.raises(ConfigError, match=r"5\.0 is outside.*4\.605"):
        ve.t_from_log_snr(torch.tensor([5.0], dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"on t ∈ \[0\.2, 0\.8\]"):
        interpolants.get("linear").t_from_log_snr(torch.tensor([0.0, 3.0], dtype=torch.float64), 0.2, 0.8)
    # the ends themselves (and round-off around them) are inside
    t = I.t_from_log_snr(torch.tensor([lo, lo * (1 - 1e-13), 3.0], dtype=torch.float64))
    assert abs(float(t[0])) < 1e-12 and abs(float(t[1])) < 1e-12


@pytest.mark.parametrize("schedule", ["logsnr", "edm"])
@pytest.mark.parametrize("name", [n for n in interpolants.names() if interpolants.INTERPOLANTS.cls(n).monotone_snr])
def test_log_snr_grids_do_not_raise_for_ordinary_intervals(schedule, name):
    I = interpolants.get(name)
    sched = schedules.get(schedule)
    for t0, t1 in ((0.0, 1.0), (1e-3, 1.0), (0.0, 0.99), (0.3, 0.7)):
        for steps in (1, 7, 50):
            g = sched.grid(steps, I, t0, t1)
            assert g[0] == t0 and g[-1] == t1 and bool(torch.all(g[1:] > g[:-1]))


# ---- problems: no import circle ----------------------------------------------------------------------------------
def test_problems_module_imports_no_problem_family_and_all_are_registered():
    src = Path(workbench.__file__).with_name("problems.py").read_text()
    imported = {n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith(("training", "fields")) for m in imported), imported
    assert {"toy2d", "vorticity", "gmm2d"} <= set(PROBLEMS.names())
