"""``graphprune profile MODEL``: params, MACs, activation memory, file size and (``--bench``) latency.

With ``--compare OTHER`` both models are profiled with the same input shapes and, under
``--bench``, timed in one interleaved run: MAC ratio and measured speedup side by side.
"""
from __future__ import annotations

import argparse
import json

from ..errors import UsageError
from .validate_cmd import add_input_shape_argument, add_report_argument

DEFAULT_THREADS = 1
DEFAULT_RUNS = 20
DEFAULT_WARMUP = 3


def _bench_options(args: argparse.Namespace) -> dict:
    given = [opt for opt in ("threads", "runs", "warmup") if getattr(args, opt) is not None]
    if given and not args.bench:
        raise UsageError(f"--{'/--'.join(given)} only apply with --bench")
    defaults = {"threads": DEFAULT_THREADS, "runs": DEFAULT_RUNS, "warmup": DEFAULT_WARMUP}
    return {opt: default if getattr(args, opt) is None else getattr(args, opt) for opt, default in defaults.items()}


def _run(args: argparse.Namespace) -> int:
    from ..profiling import profile
    from ..progress import bars_visible
    from ..report import check_report_path, write_report
    from ..validation import parse_input_shapes

    bench = _bench_options(args)
    if args.report:
        check_report_path(args.report)
    result = profile(args.model, input_shapes=parse_input_shapes(args.input_shape), bench=args.bench,
                     compare=args.compare, progress=bars_visible(), **bench)
    if args.json:
        print(json.dumps(result.to_dict(per_node=args.per_node), indent=2))
    else:
        print("\n".join(result.summary_lines(per_node=args.per_node)))
    if args.report:
        title = f"profile {args.model}" + (f" vs {args.compare}" if args.compare else "")
        write_report(args.report, {"title": title, "profile": result.to_dict(per_node=True)})
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="parameters, MACs, activation memory and latency of a model",
        description="Count parameters, MACs (formulas in graphprune.profiling.macs) and activation memory per "
                    "op type (and per node), and optionally measure onnxruntime latency. Exit codes: 0 done, "
                    "2 usage error, 3 model unreadable, 4 report not writable.")
    parser.add_argument("model", help="the model (.onnx)")
    parser.add_argument("--compare", metavar="OTHER", help="a second model (e.g. the pruned one) to put side by side")
    parser.add_argument("--bench", action="store_true", help="measure onnxruntime CPU latency (interleaved with "
                        "--compare)")
    parser.add_argument("--threads", type=int, help=f"intra-op threads for --bench (default {DEFAULT_THREADS})")
    parser.add_argument("--runs", type=int, help=f"timed runs for --bench (default {DEFAULT_RUNS})")
    parser.add_argument("--warmup", type=int, help=f"untimed warm-up runs for --bench (default {DEFAULT_WARMUP})")
    add_input_shape_argument(parser)
    parser.add_argument("--per-node", action="store_true", help="also list every node")
    parser.add_argument("--json", action="store_true", help="print the profile as JSON instead of tables")
    add_report_argument(parser)
    parser.set_defaults(func=_run)
