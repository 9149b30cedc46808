"""``graphprune sensitivity MODEL``: output drift when each group alone is pruned at several ratios."""
from __future__ import annotations

import argparse
import json

from ..errors import UsageError
from ..vocabulary import DATA_DRIVEN, DEFAULT_RANDOM_SAMPLES, DEFAULT_RATIOS, DRIFT_METRICS, SENSITIVITY_SAMPLES
from .argtypes import fraction, positive_int
from .plan_cmd import (add_calibration_image_arguments, add_criterion_arguments, add_executor_arguments,
                       executor_kwargs, image_options)
from .validate_cmd import add_input_shape_argument, add_report_argument

EPILOG = """examples:
  graphprune sensitivity model.onnx
  graphprune sensitivity model.onnx --calib images/ --calib-samples 8 --ratios 0.2,0.4,0.6 --report sens.html
  graphprune sensitivity model.onnx --importance fluctuation --calib inputs.npz --json
  graphprune sensitivity model.onnx --calib images/ --metric cosine --jobs 4
  graphprune sensitivity model.onnx --calib images/ --executor ray --ray-address 10.0.0.5:6379

For every prunable group and ratio, that group alone loses its lowest-scoring slots and the
outputs are compared with the unpruned model's on the first --calib-samples calibration samples
(or --samples seeded random inputs without --calib): the drift is the relative L2 error of the
worst output (--metric). Every (group, ratio) is an independent evaluation, run by --jobs worker
processes (or actors of a Ray cluster with --executor ray: the same numbers); the budget search of graphprune prune --max-drift measures the same way. The HTML
report plots drift against ratio per group; use it to set per-node ratios in a --config file for
graphprune plan/prune, or let graphprune prune --max-drift D choose them."""


def _ratios(text: str) -> tuple[float, ...]:
    values = tuple(fraction(v) for v in text.replace(" ", "").split(",") if v)
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated ratios in [0, 1), got {text!r}")
    return tuple(sorted(set(values)))


def _run(args: argparse.Namespace) -> int:
    from ..api import sensitivity
    from ..pipeline.load import load
    from ..progress import bars_visible
    from ..report import check_report_path, write_report
    from ..validation import parse_input_shapes

    if args.report:
        check_report_path(args.report)
    if args.calib is None and args.importance in DATA_DRIVEN:
        raise UsageError(f"--importance {args.importance} is data-driven: give calibration data with --calib PATH")
    if args.calib is None and any(v is not None for v in (args.mean, args.std, args.size)):
        raise UsageError("--mean/--std/--size apply to an image folder given with --calib")
    result = sensitivity(load(args.model), ratios=args.ratios, importance=args.importance, aggregate=args.aggregate,
                         calib=args.calib, calib_samples=args.calib_samples, tokenizer=args.tokenizer,
                         max_length=args.max_length, samples=args.samples,
                         keep_bn=args.keep_bn, input_shapes=parse_input_shapes(args.input_shape), seed=args.seed,
                         image_options=image_options(args), progress=bars_visible(), metric=args.metric,
                         **executor_kwargs(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print("\n".join(result.summary_lines()))
    if args.report:
        write_report(args.report, {"title": f"sensitivity of {args.model}", "sensitivity": result.to_dict()})
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sensitivity", help="output drift when each group alone is pruned at several ratios",
        description="Measure, for every prunable dependency group, how far the outputs move when that group "
                    "alone is pruned at each ratio: the data needed to set per-layer ratios.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx)")
    parser.add_argument("--ratios", type=_ratios, default=DEFAULT_RATIOS, metavar="R,R,...",
                        help="fractions of each group's slots to remove, e.g. 0.1,0.3,0.5,0.7 (the default)")
    add_criterion_arguments(parser)
    parser.set_defaults(calib_samples=SENSITIVITY_SAMPLES)
    parser.add_argument("--samples", type=positive_int, default=DEFAULT_RANDOM_SAMPLES, metavar="N",
                        help=f"seeded random inputs when no --calib is given (default {DEFAULT_RANDOM_SAMPLES})")
    parser.add_argument("--metric", choices=DRIFT_METRICS, default="rel",
                        help="drift: rel (relative L2 error, default), cosine (1 - mean cosine), top1")
    add_executor_arguments(parser.add_argument_group("workers"))
    parser.add_argument("--keep-bn", action="store_true", help="do not fold BatchNormalization first")
    parser.add_argument("--seed", type=int, default=0, help="seed of random inputs and scores (default 0)")
    add_input_shape_argument(parser)
    add_calibration_image_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    add_report_argument(parser)
    parser.set_defaults(func=_run)
