"""Speedup of a pruned model over its original: params, MACs, MAC ratio and measured ORT latency.

    python benchmarks/bench_speedup.py --ratio 0.5                  # zoo ResNet-50 (full), pruned at 0.5
    python benchmarks/bench_speedup.py model.onnx --pruned slim.onnx --threads 4 --runs 100

Both models run in onnxruntime (CPU, all graph optimizations, fixed intra-op threads) on the
same seeded input, their runs interleaved so machine noise hits both alike (see
graphprune.profiling.bench). ``--ratio`` prunes with ``graphprune.api.prune`` first. The table
is Markdown, ready for the README, and is followed by the command that produced it.
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # models/ is a folder of the repository, not an installed package

from graphprune.errors import GraphPruneError, UsageError  # noqa: E402
from graphprune.profiling import profile  # noqa: E402
from graphprune.progress import bars_visible  # noqa: E402
from graphprune.report.text import si  # noqa: E402
from graphprune.validation import parse_input_shapes  # noqa: E402
from graphprune.io.read import as_model  # noqa: E402

DEFAULT_ZOO_MODEL = "resnet50"


def _original(args):
    """(model or path, label) of the original model: the path given, or a zoo model built on the spot."""
    if args.model:
        return args.model, Path(args.model).name
    try:
        from models.zoo import build
    except ImportError as exc:
        raise UsageError(f"no model given and the zoo (models/zoo.py) cannot be imported: {exc}") from exc
    return build(args.zoo, size=args.size), f"zoo {args.zoo} ({args.size})"


def _pruned(args, original):
    """(model or path, label) of the pruned model: --pruned, or graphprune.api.prune at --ratio."""
    if args.pruned:
        return args.pruned, Path(args.pruned).name
    try:
        from graphprune.api import prune
    except ImportError as exc:
        raise UsageError("--ratio needs graphprune.api.prune, which this checkout does not have yet "
                         f"({exc}); prune with the CLI and pass --pruned PATH instead") from exc
    result = prune(as_model(original), ratio=args.ratio)
    model = getattr(result, "model", result)
    return model, f"pruned at {args.ratio:g}"


def _rows(p) -> list[str]:
    q = p.compare
    lines = ["| model | params | MACs | MAC ratio | ORT median ms (p10-p90) | speedup |",
             "|---|---:|---:|---:|---:|---:|"]
    for prof, ratio, speedup in ((p, "1", "1.00x"), (q, f"{p.mac_ratio:.3f}", f"{p.speedup:.2f}x")):
        lat = prof.latency
        lines.append(f"| {prof.name} | {si(prof.total_params)} | {si(prof.total_macs)} | {ratio} | "
                     f"{lat.median_ms:.2f} ({lat.p10_ms:.2f}-{lat.p90_ms:.2f}) | {speedup} |")
    return lines


def run(args) -> int:
    if (args.pruned is None) == (args.ratio is None):
        raise UsageError("give exactly one of --pruned PATH or --ratio R")
    original, label = _original(args)
    pruned, pruned_label = _pruned(args, original)
    p = profile(original, compare=pruned, bench=True, threads=args.threads, runs=args.runs, warmup=args.warmup,
                input_shapes=parse_input_shapes(args.input_shape), progress=bars_visible())
    p = _relabel(p, label, pruned_label)
    print("\n".join(_rows(p)))
    print(f"\n{args.runs} interleaved runs after {args.warmup} warm-up, {args.threads} thread(s), inputs "
          + ", ".join(f"{k}:{'x'.join(map(str, v))}" for k, v in p.input_shapes.items())
          + f"; {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("command: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *args.argv]))
    return 0


def _relabel(p, label: str, pruned_label: str):
    from dataclasses import replace

    return replace(p, name=label, compare=replace(p.compare, name=pruned_label))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help=f"original .onnx (default: zoo {DEFAULT_ZOO_MODEL}, see --zoo/--size)")
    ap.add_argument("--zoo", default=DEFAULT_ZOO_MODEL, help="zoo model to build when no path is given")
    ap.add_argument("--size", default="full", choices=("small", "full"), help="zoo model size (default full)")
    ap.add_argument("--pruned", metavar="PATH", help="the pruned .onnx")
    ap.add_argument("--ratio", type=float, help="prune the original at this ratio with graphprune.api.prune")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for both sessions (default 1)")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per model (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs per model (default 5)")
    ap.add_argument("--input-shape", action="append", metavar="NAME:DIMS", help="fix a dynamic input shape")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        return run(args)
    except GraphPruneError as exc:
        print(f"bench_speedup: error: {exc.message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
