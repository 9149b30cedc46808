"""``graphprune prune MODEL -o OUT --ratio R``: remove channels consistently and prove it."""
from __future__ import annotations

import argparse
import json

from ..api import prune
from ..core import check_ratio
from ..importance import IMPORTANCE_NAMES
from ..io import check_output_path, load_model, save_model
from ..report import check_report_path, write_report
from .validate_cmd import add_report_argument, add_validation_arguments, validation_kwargs

EPILOG = """examples:
  graphprune prune model.onnx -o slim.onnx --ratio 0.3
  graphprune prune model.onnx -o slim.onnx --ratio 0.5 --importance l1 --exclude '*head*'
  graphprune prune model.onnx -o slim.onnx --ratio 0.3 --keep-bn --no-validate
  graphprune prune model.onnx -o slim.onnx --ratio 0.3 --data images/ --mean 0.485,0.456,0.406 \\
      --std 0.229,0.224,0.225 --report prune.html

By default BatchNormalization is folded first, and the output is checked twice: against its
oracle (the original with the removed channels' consumers zeroed: must match exactly) and
against the original (drift: cosine similarity, top-1 agreement), on --data or random inputs."""


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from exc
    if not (0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (fraction of channels removed), got {value:g}")
    return value


def _run(args: argparse.Namespace) -> int:
    check_ratio(args.ratio)
    out = check_output_path(args.output, (args.model,), force=args.force)
    if args.report:
        check_report_path(args.report)
    vkw = validation_kwargs(args)
    model = load_model(args.model)
    result = prune(model, ratio=args.ratio, importance=args.importance, exclude=tuple(args.exclude or ()),
                   keep_bn=args.keep_bn, validate=not args.no_validate, data=vkw["data"], samples=vkw["samples"],
                   input_shapes=vkw["input_shapes"], seed=args.seed,
                   strict_initializer_inputs=args.strict_initializer_inputs, progress=vkw["progress"],
                   image_options=vkw["image_options"])
    save_model(result.model, out, inputs=(args.model,), force=args.force)
    if args.json:
        print(json.dumps({"output": str(out), **result.to_dict()}, indent=2))
    else:
        print("\n".join(result.summary_lines()))
        print(f"wrote {out}")
    if args.report:
        write_report(args.report, {"title": f"prune {args.model} -> {out}", "prune": result.to_dict(),
                                   "layers": result.layers, "groups": _group_rows(result),
                                   **({"validation": result.drift} if result.drift is not None else {})})
    return 0


def _group_rows(result) -> list[dict]:
    rows = []
    for g in result.analysis.groups:
        removed = len(result.removed.get(g.id, ()))
        rows.append({"group": g.id, "size": g.n_slots, "removed": removed, "first": str(g.representative),
                     "barriers": sorted({b.reason for b in g.barriers})})
    return rows


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune", help="remove a fraction of the channels of every prunable group",
        description="Remove the least important channels of every prunable dependency group consistently "
                    "across all coupled layers, and write a smaller, valid ONNX model whose outputs keep their "
                    "names and shapes.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx)")
    parser.add_argument("-o", "--output", required=True, help="output model path (never the input unless --force)")
    parser.add_argument("--ratio", type=_ratio, default=0.3,
                        help="fraction of the slots removed from every prunable group, rounded down, at least "
                             "one kept (default 0.3)")
    parser.add_argument("--importance", choices=IMPORTANCE_NAMES, default="l2",
                        help="criterion ranking slots (default l2: magnitude over all parameter slices)")
    parser.add_argument("--exclude", action="append", metavar="GLOB",
                        help="keep every group touching a node whose name matches GLOB (repeatable)")
    parser.add_argument("--keep-bn", action="store_true", help="do not fold BatchNormalization first")
    parser.add_argument("--no-validate", action="store_true", help="skip the oracle and drift checks")
    parser.add_argument("--force", action="store_true", help="allow overwriting the input model")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    parser.add_argument("--strict-initializer-inputs", action="store_true",
                        help="treat initializers that are also graph inputs as overridable (not pruned)")
    add_validation_arguments(parser, samples_help="samples for the checks (default: 2 for the oracle, 4 random "
                             "or all of --data for drift)")
    add_report_argument(parser)
    parser.set_defaults(func=_run)
