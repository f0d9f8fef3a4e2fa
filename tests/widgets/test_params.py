"""The param state of the dashboard (widgets/params.py): selectors over the registries, bounds = the caps of
widgets/state.py, one generated sub-object per registry entry, and the round trip to DashboardConfig."""
from __future__ import annotations

import inspect

import param
import pytest

from widgets.params import DashboardForm, DashboardState, EntryParams, entry_class
from widgets.state import (EPS_RANGE, FAMILIES, NFE_RANGE, PARAM_CAPS, PARTICLES_RANGE, T_RANGE, DashboardConfig,
                           config_to_query, param_specs, parse_query)


def test_selectors_list_the_registries():
    for fam, reg in FAMILIES.items():
        assert isinstance(DashboardState.param[fam], param.Selector)
        assert DashboardState.param[fam].objects == reg.names()
    assert DashboardState.param.solver_b.objects == FAMILIES["solver"].names()
    assert DashboardState.param.schedule_b.objects == FAMILIES["schedule"].names()


@pytest.mark.parametrize("name, bounds", [("nfe", NFE_RANGE), ("nfe_b", NFE_RANGE), ("particles", PARTICLES_RANGE),
                                          ("eps", EPS_RANGE), ("t_start", T_RANGE), ("t_end", T_RANGE)])
def test_bounds_are_the_caps_hard_in_the_state_soft_in_the_form(name, bounds):
    assert tuple(DashboardState.param[name].bounds) == tuple(bounds)
    s = DashboardState()
    with pytest.raises(ValueError):
        setattr(s, name, bounds[1] + 1)
    assert getattr(s, name) == getattr(DashboardConfig(), name)          # refused, not clamped
    f = DashboardForm()
    assert DashboardForm.param[name].bounds is None and tuple(DashboardForm.param[name].softbounds) == tuple(bounds)
    setattr(f, name, bounds[1] + 1)                                       # kept as typed ...
    cfg, errors = f.check() if name != "nfe_b" else (None, {})
    if name != "nfe_b":
        assert cfg is None and str(bounds[1]) in errors[name]           # ... and refused with the cap


def test_nfe_b_is_checked_in_compare_mode_only():
    f = DashboardForm(nfe_b=999)
    assert f.check()[0] is not None
    f.compare = True
    assert "nfe_b" in f.check()[1]


def test_empty_box_and_order_messages():
    f = DashboardForm(particles=None, t_start=0.9, t_end=0.5)
    cfg, errors = f.check()
    assert cfg is None and errors["particles"] == "particles: enter an integer in [1, 10000]"
    assert "below t_end" in errors["t_start"]


@pytest.mark.parametrize("fam", list(FAMILIES))
def test_one_sub_object_per_entry_from_its_signature(fam):
    reg = FAMILIES[fam]
    for name in reg.names():
        cls = entry_class(fam, name)
        assert issubclass(cls, EntryParams) and cls is entry_class(fam, name)     # generated once
        specs = param_specs(fam, name)
        obj = cls()
        assert obj.names() == [s.name for s in specs]
        assert set(obj.names()) <= set(inspect.signature(reg.cls(name).__init__).parameters)
        for s in specs:
            p = cls.param[s.name]
            kind = {"bool": param.Boolean, "int": param.Integer, "float": param.Number, "choice": param.Selector,
                    "str": param.String}.get(s.kind, param.Parameter)
            assert isinstance(p, kind)
            if s.kind in ("int", "float"):
                assert tuple(p.bounds) == tuple(s.bounds)
                assert tuple(entry_class(fam, name, form=True).param[s.name].softbounds) == tuple(s.bounds)
            if s.kind == "choice":
                assert p.objects == list(s.choices)


def test_state_sub_object_follows_the_chosen_entry():
    s = DashboardState(solver="pc")
    assert type(s.solver_params) is entry_class("solver", "pc")
    assert tuple(s.solver_params.param.n_corrector.bounds) == PARAM_CAPS[("solver", "n_corrector")]
    with pytest.raises(ValueError):
        s.solver_params.n_corrector = 50
    s.solver = "deis"
    assert type(s.solver_params) is entry_class("solver", "deis") and s.solver_params.order == 3
    f = DashboardForm(data="gmm_nd")
    f.data_params.dim = 100_000
    cfg, errors = f.check()
    assert cfg is None and "256" in errors["data.dim"]


def test_checkpoint_is_a_choice_among_the_server_names(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DASHBOARD_CHECKPOINTS", f"mine={tmp_path / 'm'}")
    cls = entry_class("data", "toy2d")
    assert cls.param.checkpoint.objects == ["none", "mine"]
    assert "cache_dir" not in cls.param and not any("path" in n for n in cls.param)


CONFIGS = [
    DashboardConfig(),
    DashboardConfig(data="gaussian", data_params={"dim": 3}, interpolant="sb", interpolant_params={"a": 0.5},
                    schedule="edm", schedule_params={"rho": 5.0}, solver="euler_maruyama", nfe=37, eps=0.25, seed=11,
                    particles=123, compare=True, solver_b="rk4", schedule_b="shift", nfe_b=40),
    DashboardConfig(schedule="explicit", schedule_params={"times": [0, 0.5, 1]}, solver="pc",
                    solver_params={"n_corrector": 2}, t_start=0.001, theme="dark"),
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("cls", [DashboardState, DashboardForm])
def test_round_trip_to_dashboard_config_and_the_url(cls, cfg):
    obj = cls.from_config(cfg)
    assert obj.to_config() == cfg
    back, msgs = parse_query(config_to_query(obj.to_config()))
    assert msgs == [] and back == cfg
