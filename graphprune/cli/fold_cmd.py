"""``graphprune fold MODEL -o OUT``: fold BatchNormalization and per-channel affines, exactly.

The folded model is validated against the input (onnxruntime, graph optimizations off, seeded
random inputs unless ``--data``) before it is written; a mismatch exits 1 and writes nothing
unless ``--force``.
"""
from __future__ import annotations

import argparse
import json
import logging


from ..errors import ValidationFailed
from .validate_cmd import add_report_argument, add_validation_arguments, failure_message, validation_kwargs

log = logging.getLogger(__name__)

EXAMPLES = """examples:
  graphprune fold model.onnx -o folded.onnx
  graphprune fold model.onnx -o folded.onnx --report fold.html
  graphprune fold model.onnx -o folded.onnx --data inputs.npz --samples 16
  graphprune fold model.onnx -o folded.onnx --no-validate --json

what folds: BatchNormalization after Conv (any group), ConvTranspose (any group), Gemm and
MatMul with constant weights (also through Reshape/Flatten/Squeeze/Unsqueeze/Transpose that keep
the channel axis); BatchNormalization before a Conv that reads no padding (or whose shift is 0)
and before a Gemm (also after Flatten); per-channel Mul/Add/Sub/Div by constants after those.
Every BatchNormalization that stays is listed with the reason."""


def _print(result, report, as_json: bool, output: str | None) -> None:
    if as_json:
        data = {"fold": result.to_dict(), "validation": report.to_dict() if report else None, "output": output}
        print(json.dumps(data, indent=2))
        return
    print("\n".join(result.summary_lines()))
    if report is not None:
        print("\n".join(report.summary_lines()))
    if output:
        print(f"wrote {output}")


def _write_report(path: str, model_path: str, result, report) -> None:
    from ..report import write_report

    data = result.to_dict()
    write_report(path, {"title": f"fold {model_path}", "summary": result.summary_lines(), "validation": report,
                        "kept_batchnorm": data["skipped"], "folded": data["folded"],
                        "fold": {k: data[k] for k in ("modified", "batchnorm", "affine_folded", "notes")}})


def _run(args: argparse.Namespace) -> int:
    if args.report:
        from ..report import check_report_path

        check_report_path(args.report)
    from ..io import check_output_path, save_model
    from ..passes.fold import fold
    from ..pipeline.load import load

    check_output_path(args.output, (args.model,), force=args.force)
    source = load(args.model)
    result = fold(source.editable())
    report = None
    if not args.no_validate:
        from ..validation import validate

        report = validate(source.proto, result.model, **validation_kwargs(args))
    failed = report is not None and not report.passed
    written = None if failed and not args.force else str(save_model(result.graph, args.output,
                                                                    inputs=(args.model,), force=args.force))
    _print(result, report, args.json, written)
    if args.report:
        _write_report(args.report, args.model, result, report)
    if failed:
        tail = "; written anyway (--force)" if written else "; nothing written (--force writes it anyway)"
        raise ValidationFailed(failure_message(report) + tail)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fold", help="fold BatchNormalization and per-channel Mul/Add into neighbouring layers, exactly",
        description="Fold every BatchNormalization (and per-channel Mul/Add/Sub/Div by constants) that can be "
                    "folded exactly into the Conv/ConvTranspose/Gemm/MatMul next to it, check that the outputs "
                    "are unchanged, and write the result. Exit 0 on success, 1 when the folded model does not "
                    "match the original (nothing is written then, unless --force).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model to fold (.onnx)")
    parser.add_argument("-o", "--output", required=True, help="where to write the folded model (.onnx)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the input model if -o names it, and write the output even when validation fails")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the check against the original (saves the memory of a second copy)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    add_report_argument(parser)
    add_validation_arguments(parser)
    parser.set_defaults(func=_run)
