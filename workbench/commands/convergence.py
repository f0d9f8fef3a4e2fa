"""``workbench convergence``: fitted convergence order of each solver on the exact GMM flow."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("convergence", help="print the solver × fitted-order table on the exact GMM flow")
    p.add_argument("--solvers", nargs="*", default=None, help="solver names (default: euler heun midpoint rk4)")
    p.add_argument("--interpolant", default="linear")
    p.add_argument("--data", default="gmm2d")
    p.add_argument("--n-samples", type=int, default=256)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..convergence import convergence_table, format_table

    rows = convergence_table(args.solvers, args.interpolant, args.data, args.n_samples)
    print(f"Convergence on the exact {args.data} flow, interpolant={args.interpolant}, float64, reference: "
          "closed-form map / Dormand-Prince rtol=atol=1e-10")
    print(format_table(rows))
    return 0
