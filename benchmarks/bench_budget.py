"""Speed and result of the budget search (``prune --max-drift``) on a real detector.

    python benchmarks/bench_budget.py                          # yolox-nano, 64 photos, cosine 0.01
    python benchmarks/bench_budget.py --budgets 0.001,0.01 --images 64 --jobs 2

The calibration data are 64 seeded crops of the scikit-image photos (``skimage/data``; nothing is
downloaded), resized to the model's input (416x416 for yolox-nano) exactly as
``benchmarks/bench_quality.py`` prepares them. The search holds out a quarter of them
(``--eval-split 0.25``) for its final check. For each budget the table gives the wall time of the
whole prune (load, fold, calibration, sensitivity, search, final check), the evaluations run by
kind, the MACs removed and the drift achieved on the held-out images; CPU s (this process and its
worker processes) says what the run costs whatever else the machine is doing. Target (issue 11):
under 2 minutes of wall time on an otherwise idle 2-core machine. The command that produced the
table follows it.
"""
from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from quality_data import MODELS  # noqa: E402

from graphprune.api import prune  # noqa: E402
from graphprune.errors import ValidationFailed  # noqa: E402


def cpu_seconds() -> float:
    """User + system time of this process and its finished children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(model: str, budget: float, metric: str, images: int, jobs: int | None, progress: bool) -> dict:
    spec = MODELS[model]
    path = spec.path
    if not path.is_file():
        raise SystemExit(f"bench_budget: {path} not found (the third-party models live in ../shared/models/)")
    calib = spec.calibration(images)
    start, cpu = time.perf_counter(), cpu_seconds()
    try:
        result = prune(str(path), calib=calib, max_drift=budget, metric=metric, jobs=jobs, progress=progress)
    except ValidationFailed as exc:
        return {"budget": budget, "seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu,
                "error": str(exc)}
    seconds = time.perf_counter() - start
    record = result.budget
    return {"budget": budget, "seconds": seconds, "cpu": cpu_seconds() - cpu, "evaluations": dict(record.evaluations),
            "groups": f"{len(record.counts)}/{len(record.curves)}",
            "macs_removed": 1.0 - result.macs_after / result.macs_before, "achieved": record.achieved,
            "samples": f"{record.samples['curves']}/{record.samples['search']}/{result.gate.samples}"}


def table(model: str, metric: str, rows: list[dict]) -> list[str]:
    lines = [f"| model | {metric} budget | wall s | CPU s | sensitivity / search / final checks | groups pruned | "
             "MACs removed | held-out drift |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {model} | {r['budget']:g} | {r['seconds']:.1f} | {r['cpu']:.1f} | - | - | - | "
                         f"{r['error'][:80]} |")
            continue
        ev = r["evaluations"]
        lines.append(f"| {model} | {r['budget']:g} | {r['seconds']:.1f} | {r['cpu']:.1f} | {ev['sensitivity']} / "
                     f"{ev['search']} / "
                     f"{ev['final check']} | {r['groups']} | {100 * r['macs_removed']:.1f}% | {r['achieved']:.4g} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolox-nano", choices=sorted(MODELS))
    parser.add_argument("--budgets", default="0.01", help="comma-separated --max-drift values (default 0.01)")
    parser.add_argument("--metric", default="cosine", choices=("cosine", "rel"))
    parser.add_argument("--images", type=int, default=64, help="calibration images (default 64)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    rows = []
    for budget in (float(b) for b in args.budgets.split(",") if b):
        rows.append(run(args.model, budget, args.metric, args.images, args.jobs, args.progress))
        print(rows[-1], file=sys.stderr)
    print("\n".join(table(args.model, args.metric, rows)))
    print(f"\n`python benchmarks/bench_budget.py {shlex.join(argv if argv is not None else sys.argv[1:])}`"
          " (samples: curves / search / held-out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
