"""``graphprune apply MODEL PLAN -o OUT``: apply a (reviewed, edited) plan and check the result."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DriftBudgetExceeded
from ..vocabulary import DEFAULT_MAX_LENGTH
from .argtypes import positive_int
from .prune_cmd import _validation_kwargs, print_result
from .validate_cmd import add_drift_gate_arguments, add_report_argument, add_validation_arguments

EPILOG = """examples:
  graphprune plan model.onnx -o plan.json --target-macs 0.5
  graphprune apply model.onnx plan.json -o slim.onnx
  graphprune apply model.onnx plan.json -o slim.onnx --data images/ --export-masks masks.json --report apply.html
  graphprune apply model.onnx plan.json -o slim.onnx --data images/ --max-drift 0.01
  graphprune plan model.onnx -o plan.json --ratio 0.3 --calib images/ --repair all
  graphprune apply model.onnx plan.json -o slim.onnx --calib images/

The plan must have been made for this model: its SHA-256 fingerprint (graph and initializer
values) is checked first; a plan for another model is refused with exit code 3. Kept indices may
be edited: dropping an index of one parameter drops its whole slot (every coupled channel), and
each such expansion is reported as a note. With --max-drift D the result must drift by at most D
(--metric) on --data (or the held-out part of --calib), else it exits 1 and nothing is written.

A plan whose repair includes sequential or statistics (the default of plan --calib) records the
SHA-256 of its calibration samples: apply needs the same samples (--calib, with the same image
options or --tokenizer) and refuses others, so that plan + apply writes exactly what prune writes."""


def _run(args: argparse.Namespace) -> int:
    from ..api import apply
    from ..io import check_output_path, save_model
    from ..pipeline.load import load
    from ..pipeline.masks import export_masks
    from ..planning.plan_file import PruningPlan, write_masks
    from ..report import check_report_path

    out = check_output_path(args.output, (args.model, args.plan), force=args.force)
    if args.report:
        check_report_path(args.report)
    if args.export_masks:
        check_output_path(args.export_masks, (args.model, args.plan, args.output))
    vkw = _validation_kwargs(args)
    the_plan = PruningPlan.load(args.plan)
    source = load(args.model)
    title = f"apply {args.plan} to {args.model} -> {out}"
    try:
        result = apply(source, the_plan, validate=not args.no_validate, data=vkw["data"], samples=vkw["samples"],
                       input_shapes=vkw["input_shapes"], seed=args.seed, progress=vkw["progress"],
                       image_options=vkw["image_options"], label=Path(args.model).name, max_drift=args.max_drift,
                       metric=args.metric, calib=args.calib, tokenizer=args.tokenizer, max_length=args.max_length)
    except DriftBudgetExceeded as exc:
        if exc.result is not None:
            print_result(args, None, exc.result, title)
        raise
    save_model(result.graph, out, inputs=(args.model,), force=args.force)
    if args.export_masks:
        write_masks(args.export_masks, export_masks(source, result.analysis, result.removed,
                                                    folded=the_plan.fold_batchnorm,
                                                    strict_initializer_inputs=the_plan.strict_initializer_inputs))
    print_result(args, out, result, title)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "apply", help="apply a JSON plan (from graphprune plan) to the model it was made for",
        description="Remove exactly the channels a plan lists (after checking that the plan was made for this "
                    "model), fold its compensation into the consumers, and check the result like prune does.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx), the one the plan was made for")
    parser.add_argument("plan", help="plan file (.json) written by graphprune plan")
    parser.add_argument("-o", "--output", required=True, help="output model path (never the input unless --force)")
    parser.add_argument("--export-masks", metavar="FILE", help="also write initializer -> kept indices per axis "
                        "(names of the model as given, BatchNorm included)")
    parser.add_argument("--calib", metavar="PATH", help="the calibration data the plan was made with, when its "
                        "repair measures the pruned model (sequential, statistics); image folders use the --mean/"
                        "--std/--size options below")
    parser.add_argument("--tokenizer", metavar="FILE", help="the tokenizer.json the plan's text --calib was read with")
    parser.add_argument("--max-length", type=positive_int, default=DEFAULT_MAX_LENGTH, metavar="N",
                        help=f"tokens per sentence at most, with --tokenizer (default {DEFAULT_MAX_LENGTH})")
    parser.add_argument("--no-validate", action="store_true", help="skip the oracle and drift checks")
    parser.add_argument("--force", action="store_true", help="allow overwriting the input model")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    add_drift_gate_arguments(parser, "the result must drift by at most D on --data (or the held-out part of "
                                     "--calib), else exit 1, nothing written")
    add_validation_arguments(parser)
    add_report_argument(parser)
    parser.set_defaults(func=_run)
