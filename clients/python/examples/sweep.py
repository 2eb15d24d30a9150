#!/usr/bin/python3
"""Submit a small hyper-parameter sweep and print what it will cost.

    /usr/bin/python3 clients/python/examples/sweep.py --team ml-research
    /usr/bin/python3 clients/python/examples/sweep.py --team ml-research --wait   # until done, actual spend

Each run is one job with a deterministic request_id (sweep name + run), so
running the script twice does not submit the sweep twice: the second time
the server answers with the same jobs (marked "existing").
Runs from the source tree as is; with the package installed, too.
"""

import argparse
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import greenlight  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default=os.environ.get("GREENLIGHT_TARGET", "127.0.0.1:50051"))
    p.add_argument("--team", default=os.environ.get("GREENLIGHT_TEAM", "ml-research"))
    p.add_argument("--sweep", default="lr-sweep", help="sweep name (also the request-id prefix)")
    p.add_argument("--lrs", default="1e-4,3e-4,1e-3", help="comma-separated learning rates")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--gpu-hours", type=float, default=32, help="reference GPU-hours per run")
    p.add_argument("--max-cost", type=Decimal, default=Decimal(200), help="USD cap per run")
    p.add_argument("--max-carbon", type=Decimal, default=Decimal(50), help="kg CO2e cap per run")
    p.add_argument("--wait", action="store_true", help="watch until every run finishes, then print actual spend")
    args = p.parse_args()

    jobs = []
    with greenlight.Client(args.target) as gl:
        for lr in args.lrs.split(","):
            name = f"{args.sweep}-lr{lr}"
            try:
                job = gl.submit(
                    team=args.team,
                    name=name,
                    gpus=args.gpus,
                    gpu_hours=args.gpu_hours,
                    max_cost_usd=args.max_cost,
                    max_carbon_kg=args.max_carbon,
                    checkpointable=True,
                    labels={"sweep": args.sweep, "lr": lr},
                    request_id=f"{args.team}/{name}",
                )
            except greenlight.CapExceeded as e:
                best = e.quote.summary if e.quote else e.message
                print(f"{name}: does not fit its caps ({best})")
                continue
            except greenlight.BudgetExhausted as e:
                print(f"{name}: team budget exhausted ({e.message}); stopping the sweep")
                break
            jobs.append(job)
            print(
                f"{name}: {job.id} {job.state.name:<8} {'existing' if job.deduplicated else 'new':<8} "
                f"on {job.placement.pool_id if job.placement else '-'}: "
                f"${job.predicted_cost_usd:,.2f}, {job.predicted_carbon_kg:,.2f} kg CO2e"
            )

        total_cost = sum((j.predicted_cost_usd or 0 for j in jobs), Decimal(0))
        total_carbon = sum((j.predicted_carbon_kg or 0 for j in jobs), Decimal(0))
        print(f"sweep {args.sweep}: {len(jobs)} runs, predicted ${total_cost:,.2f} and {total_carbon:,.2f} kg CO2e")

        if args.wait and jobs:
            pending = {j.id for j in jobs if not j.done}
            start = min(j.revision for j in jobs) - 1
            for event in gl.watch(from_revision=max(0, start), team=args.team):
                if event.job_id in pending and event.state.terminal:
                    pending.discard(event.job_id)
                    print(f"  {event.job_id} {event.state.name}")
                if not pending:
                    break
            final = [gl.get(j.id) for j in jobs]
            spent = sum((j.accrued_cost_usd for j in final), Decimal(0))
            carbon = sum((j.accrued_carbon_kg for j in final), Decimal(0))
            print(f"sweep {args.sweep}: spent ${spent:,.2f} and {carbon:,.2f} kg CO2e")

        usage = gl.usage(args.team)
        budget = f"of ${usage.cost_budget_usd:,.2f}" if usage.cost_budget_usd else "(no budget)"
        print(
            f"team {args.team} this month: spent ${usage.cost_spent_usd:,.2f} + reserved "
            f"${usage.cost_reserved_usd:,.2f} {budget}; {usage.carbon_spent_kg:,.2f} kg CO2e spent"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except greenlight.GreenlightError as e:
        print(f"sweep: {type(e).__name__}: {e.message}", file=sys.stderr)
        sys.exit(1)
