"""URL state is untrusted input: parse_query must validate it like any other input and never raise or evaluate."""
from __future__ import annotations

import pytest

from widgets.state import (FAMILIES, MAX_STATE_ELEMENTS, NFE_RANGE, DashboardConfig, build_experiment,
                           config_to_query, is_server_only, param_specs, parse_query, solver_traits)
from workbench.solvers import SOLVERS


def test_empty_and_defaults():
    cfg, msgs = parse_query({})
    assert cfg == DashboardConfig() and msgs == []
    cfg, msgs = parse_query(None)
    assert cfg == DashboardConfig() and msgs == []


def test_valid_query_roundtrip():
    cfg = DashboardConfig(data="gaussian", data_params={"dim": 3}, interpolant="sb", interpolant_params={"a": 0.5},
                          schedule="edm", schedule_params={"rho": 5.0}, solver="euler_maruyama", nfe=37, eps=0.25,
                          seed=11, particles=123, compare=True, solver_b="rk4", schedule_b="shift", nfe_b=40)
    back, msgs = parse_query(config_to_query(cfg))
    assert msgs == []
    assert back == cfg


def test_bokeh_session_args_bytes_lists_and_aliases():
    cfg, msgs = parse_query({"solver": [b"RK4"], "nfe": [b"8", b"12"], "interpolant": [b"linear"]})
    assert msgs == []
    assert cfg.solver == "rk4" and cfg.nfe == 12


@pytest.mark.parametrize("query, field", [
    ({"solver": "nope"}, "solver"),
    ({"interpolant": "__import__('os').system('true')"}, "interpolant"),
    ({"data": "../../etc/passwd"}, "data"),
    ({"schedule": ""}, "schedule"),
    ({"nfe": str(NFE_RANGE[1] + 1)}, "nfe"),
    ({"nfe": "0"}, "nfe"),
    ({"nfe": "1e400"}, "nfe"),
    ({"nfe": "2.5"}, "nfe"),
    ({"nfe": "nan"}, "nfe"),
    ({"particles": "100000000"}, "particles"),
    ({"seed": "-1"}, "seed"),
    ({"eps": "inf"}, "eps"),
    ({"eps": "-0.1"}, "eps"),
    ({"compare": "maybe"}, "compare"),
    ({"solver_b": "bogus"}, "solver_b"),
    ({"nfe_b": "abc"}, "nfe_b"),
    ({"interpolant": "sb", "interpolant.a": "{'__class__': 1}"}, "interpolant.a"),
    ({"interpolant": "sb", "interpolant.nope": "1"}, "interpolant_params"),
    ({"interpolant.a": "1"}, "interpolant_params"),          # linear has no parameter a
    ({"data": "gmm_nd", "data.dim": "100000000"}, "data.dim"),  # bounded data sizes
    ({"solver": "time_shifted", "solver.base_params": '{"x": {"y": 1}}'}, "solver.base_params"),
    ({"evil": "1"}, "url"),
    ({"solver": "x" * 5000}, "solver"),
])
def test_garbage_yields_message_and_defaults(query, field):
    cfg, msgs = parse_query(query)
    assert len(msgs) >= 1
    assert any(m.startswith(field) for m in msgs), msgs
    # the bad entry was dropped: the field keeps its default (or stays valid)
    default = DashboardConfig()
    key = field.split(".")[0].replace("_params", "")
    if key in ("nfe", "particles", "seed", "eps", "nfe_b", "solver_b", "compare"):
        assert getattr(cfg, key) == getattr(default, key)
    for fam, reg in FAMILIES.items():
        assert getattr(cfg, fam) in reg.names()
    assert NFE_RANGE[0] <= cfg.nfe <= NFE_RANGE[1]


def test_non_mapping_and_too_many_keys():
    cfg, msgs = parse_query(["solver", "euler"])  # type: ignore[arg-type]
    assert cfg == DashboardConfig() and msgs
    cfg, msgs = parse_query({f"k{i}": "1" for i in range(500)})
    assert cfg == DashboardConfig() and any("more than" in m for m in msgs)


def test_param_specs_cover_every_registered_name():
    for fam, reg in FAMILIES.items():
        for name in reg.names():
            specs = param_specs(fam, name)
            assert {s.name for s in specs} <= set(reg.parameters(name))
            for s in specs:
                assert s.kind in ("bool", "int", "float", "str", "json", "choice")
                assert not is_server_only(fam, s.name) or s.kind == "choice"   # no path/folder controls


def test_build_experiment_readable_messages():
    # a log-SNR solver on an interpolant without a Gaussian part
    exp, msg = build_experiment(DashboardConfig(interpolant="mirror", solver="dpmpp_2m"))
    assert exp is None and "log-SNR" in msg and "Traceback" not in msg
    # NFE below the solver's evaluations per step
    exp, msg = build_experiment(DashboardConfig(solver="rk4", nfe=3))
    assert exp is None and msg.startswith("A: nfe")
    # a constructor rejecting a value
    exp, msg = build_experiment(DashboardConfig(interpolant="sb", interpolant_params={"a": -1.0}))
    assert (exp is None and msg) or exp is not None
    # side B uses its own solver/NFE and the shared noise settings
    cfg = DashboardConfig(compare=True, solver_b="euler", nfe_b=7, seed=3)
    exp_b, msg = build_experiment(cfg, "b")
    assert msg is None and exp_b.solver == "euler" and exp_b.nfe == 7 and exp_b.seed == 3


def test_every_solver_gives_experiment_or_message():
    for name in SOLVERS.names():
        exp, msg = build_experiment(DashboardConfig(solver=name, nfe=12, particles=8))
        assert (exp is None) != (msg is None)
        assert solver_traits(name).startswith(name)


@pytest.mark.parametrize("query, field", [
    ({"data": "vorticity", "data.cache_dir": "/tmp/evil"}, "data.cache_dir"),
    ({"data": "toy2d", "data.checkpoint": "/etc/passwd"}, "data.checkpoint"),
    ({"data": "toy2d", "data.checkpoint": "../model"}, "data.checkpoint"),
    ({"solver.some_path": "/x"}, "solver.some_path"),
])
def test_paths_never_come_from_a_url(query, field):
    cfg, msgs = parse_query(query)
    assert any(m.startswith(field) for m in msgs), msgs
    assert "cache_dir" not in cfg.data_params and "checkpoint" not in cfg.data_params
    assert "some_path" not in cfg.solver_params


def test_server_only_paths_are_set_by_the_server(monkeypatch, tmp_path):
    import widgets.state as st

    monkeypatch.setenv("WORKBENCH_DASHBOARD_CHECKPOINTS", f"mine={tmp_path / 'model'}")
    cfg, msgs = parse_query({"data": "toy2d", "data.checkpoint": "mine"})
    assert msgs == [] and cfg.data_params == {"checkpoint": "mine"}
    assert st.server_data_params("toy2d", cfg.data_params)["checkpoint"] == str(tmp_path / "model")
    assert st.server_data_params("vorticity", {})["cache_dir"] == st.SERVER_CACHE_DIR
    assert "checkpoint" not in st.server_data_params("toy2d", {"checkpoint": "none"})
    # a config built in Python cannot smuggle a path either
    exp, msg = build_experiment(DashboardConfig(data="vorticity", data_params={"cache_dir": str(tmp_path)}))
    assert exp is None and "data.cache_dir" in msg and not any(tmp_path.iterdir())


@pytest.mark.parametrize("query, field, text", [
    ({"eps": "7"}, "eps", "[0.0, 5.0]"),                     # refused, not clamped
    ({"particles": "10001"}, "particles", "10000"),
    ({"data": "gmm_nd", "data.dim": "257"}, "data.dim", "256"),
    ({"data": "gmm2d", "data.n_modes": "65"}, "data.n_modes", "64"),
    ({"data": "toy2d", "data.steps": "100000"}, "data.steps", "5000"),
    ({"data": "vorticity", "data.iterations": "5000"}, "data.iterations", "2000"),
    ({"solver": "pc", "solver.n_corrector": "50"}, "solver.n_corrector", "10"),
    ({"t_start": "1.5"}, "t_start", "[0.0, 1.0]"),
])
def test_oversized_values_are_refused_with_the_cap(query, field, text):
    cfg, msgs = parse_query(query)
    hit = [m for m in msgs if m.startswith(field)]
    assert hit and text in hit[0], msgs
    assert cfg.eps == 0.0 and cfg.particles == DashboardConfig().particles and cfg.t_start == 0.0
    assert "dim" not in cfg.data_params and "n_corrector" not in cfg.solver_params


def test_state_size_cap_depends_on_the_sample_shape():
    exp, msg = build_experiment(DashboardConfig(data="vorticity", data_params={"grid": 64}, particles=2000))
    per = 64 * 64
    assert exp is None and msg.startswith("A: particles") and str(MAX_STATE_ELEMENTS // per) in msg
    exp, msg = build_experiment(DashboardConfig(data="gmm_nd", data_params={"dim": 256}, particles=10_000))
    assert msg is None and 10_000 * 256 <= MAX_STATE_ELEMENTS


def test_t_start_t_end_roundtrip_and_order():
    cfg, msgs = parse_query({"interpolant": "vp", "t_start": "0.001", "t_end": "1"})
    assert msgs == [] and cfg.t_start == 0.001
    assert parse_query(config_to_query(cfg))[0] == cfg
    exp, msg = build_experiment(cfg)
    assert msg is None and exp.t_start == 0.001
    exp, msg = build_experiment(DashboardConfig(t_start=0.6, t_end=0.5))
    assert exp is None and "t_start" in msg


def test_solver_traits_read_the_instance():
    from workbench.solvers import SOLVERS

    for name in SOLVERS.names():
        s = SOLVERS.get(name)
        line = solver_traits(name)
        assert f"order {s.order}" in line
        if not s.adaptive:
            assert f"{s.evals_per_step} eval" in line
        assert ("SDE" if s.stochastic else "ODE") in line
    assert "order 2" in solver_traits("dpmpp_2m") and "3 evals/step" in solver_traits("dpm_solver_3")
    assert "order 2" in solver_traits("dpm_solver_pp", {"order": 2})
    assert "order 3" in solver_traits("dpm_solver_pp", {"order": 3})
