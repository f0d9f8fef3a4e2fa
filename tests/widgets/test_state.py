"""URL state is untrusted input: parse_query must validate it like any other input and never raise or evaluate."""
from __future__ import annotations

import pytest

from widgets.state import (FAMILIES, NFE_RANGE, DashboardConfig, build_experiment, config_to_query, param_specs,
                           parse_query, solver_traits)
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
                assert s.kind in ("bool", "int", "float", "str", "json")


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
