"""``workbench convergence``: fitted convergence order of every registered solver on the exact GMM flow."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("convergence", help="print the solver × path × fitted-order table on the exact GMM flow")
    p.add_argument("--solvers", nargs="*", default=None, help="solver names (default: every registered solver)")
    p.add_argument("--data", default="gmm2d")
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--details", action="store_true", help="also print the step counts and errors of every fit")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..convergence import PATHS, convergence_table, format_table

    rows = convergence_table(args.solvers, data=args.data, n_samples=args.n_samples)
    paths = "; ".join(f"{k} = {i} [{a:g}, {b:g}] {s}" for k, (i, a, b, s) in PATHS.items())
    print(f"Convergence on the exact {args.data} flow, float64, reference: Dormand-Prince rtol=atol=1e-13; order = "
          f"least-squares slope of log error over the step counts each solver declares (--details); paths: {paths}; "
          f"✗ = outside ±0.15 of nominal, — = not checked on that path")
    print(format_table(rows, details=args.details))
    return 0 if all(r.ok for r in rows) else 1
