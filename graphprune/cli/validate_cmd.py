"""``graphprune validate REFERENCE CANDIDATE``: compare two models' outputs on the same inputs.

Exit 0 when every output is within tolerance (or, with ``--max-drift D``, when the candidate's
drift is at most D), 1 when not (the table shows the worst output first). :func:`add_validation_arguments` and :func:`validation_kwargs` are shared with the
commands that validate their own output (prune, fold); :func:`add_report_argument` with every
command that writes a report.
"""
from __future__ import annotations

import argparse
import json

from ..errors import UsageError, ValidationFailed
from ..vocabulary import CHANNEL_ORDERS, LAYOUTS
from .argtypes import floats, image_size, positive_float


def add_input_shape_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-shape", action="append", metavar="NAME:DIMS", default=None,
                        help="fix an input's shape, e.g. input:1x3x224x224 (repeat per input); overrides the "
                             "sizes graphprune finds for dynamic dims (batch 1, others from the model or a size "
                             "that runs)")


def add_report_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", metavar="FILE", help="also write a report: FILE.json (data) or "
                        "FILE.html (one self-contained page)")


def add_validation_arguments(parser: argparse.ArgumentParser, *, samples_help: str | None = None) -> None:
    """Data, tolerance and sample options of validation (also used by prune and fold)."""
    group = parser.add_argument_group("validation inputs and tolerances")
    group.add_argument("--data", metavar="PATH", help="inputs: .npz (arrays named after the inputs), .npy "
                       "(one-input models) or a folder of images; default: seeded random inputs")
    group.add_argument("--samples", type=int, default=None, metavar="N",
                       help=samples_help or "number of samples (default: 4 random ones, or all of --data)")
    group.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    add_input_shape_argument(group)
    group.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    group.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    add_image_arguments(parser, "--data")


def add_image_arguments(parser: argparse.ArgumentParser, option: str) -> None:
    """Preprocessing options of an image folder given with ``option`` (--data or --calib)."""
    images = parser.add_argument_group(f"image folders ({option} DIR)")
    images.add_argument("--mean", type=floats, metavar="M[,M,M]", help="per-channel mean in [0,1] units, "
                        "model channel order (e.g. 0.485,0.456,0.406)")
    images.add_argument("--std", type=floats, metavar="S[,S,S]", help="per-channel std in [0,1] units")
    images.add_argument("--size", type=image_size, metavar="H[xW]", help="resize to H x W (default: the input's size)")
    images.add_argument("--layout", choices=LAYOUTS, default="NCHW", type=str.upper, help="default NCHW")
    images.add_argument("--channel-order", choices=CHANNEL_ORDERS, default="RGB", type=str.upper,
                        help="default RGB")


def validation_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`graphprune.validation.validate` from parsed options."""
    image_options = {"mean": args.mean, "std": args.std, "size": args.size, "layout": args.layout,
                     "channel_order": args.channel_order}
    if args.data is None and any(image_options[k] is not None for k in ("mean", "std", "size")):
        raise UsageError("--mean/--std/--size apply to an image folder given with --data")
    from ..progress import bars_visible
    from ..validation import parse_input_shapes

    return {"data": args.data, "samples": args.samples, "input_shapes": parse_input_shapes(args.input_shape),
            "rtol": args.rtol, "atol": args.atol, "seed": args.seed, "progress": bars_visible(),
            "image_options": image_options}


def failure_message(report) -> str:
    """One line naming the worst output and how far it is from the tolerance."""
    worst = report.output(report.worst) if report.worst else None
    if worst is None:
        return "validation failed: " + ("; ".join(report.notes) or "no outputs to compare")
    if worst.problem and worst.violation == float("inf"):
        return f"validation failed: output {worst.name!r}: {worst.problem}"
    scale = f", or {report.rtol_of_scale:g} of the output's scale" if report.rtol_of_scale is not None else ""
    return (f"validation failed: output {worst.name!r} max_abs {worst.max_abs:.3g} is {worst.tolerance_ratio:.3g}x the "
            f"tolerance (rtol={report.rtol:g}, atol={report.atol:g}{scale})"
            + (f"; {worst.problem}" if worst.problem else ""))


def add_drift_gate_arguments(parser, limit_help: str) -> None:
    """``--max-drift D`` and ``--metric`` (the drift it bounds)."""
    from ..vocabulary import DRIFT_METRICS

    parser.add_argument("--max-drift", type=positive_float, metavar="D", help=limit_help)
    parser.add_argument("--metric", choices=DRIFT_METRICS, default="cosine",
                        help="drift of --max-drift: cosine (1 - mean cosine; default), top1 (1 - top-1 "
                             "agreement of class-score outputs), rel (relative L2 error)")


def _drift_gate(report, args: argparse.Namespace):
    """The candidate's drift on these inputs against ``--max-drift`` (None without it)."""
    from ..pipeline.values import Gate

    if args.max_drift is None:
        return None
    if report.drift is None:
        raise ValidationFailed(failure_message(report))  # outputs missing or unmatched: no drift to bound
    return Gate(args.metric, args.max_drift, report.drift.require(args.metric), report.samples,
                f"samples of {report.data}")


def _run(args: argparse.Namespace) -> int:
    from ..pipeline.drift_summary import drift_lines
    from ..report import check_report_path, write_report
    from ..validation import validate

    if args.report:
        check_report_path(args.report)
    kwargs = validation_kwargs(args)
    report = validate(args.reference, args.candidate, **kwargs, exact=args.max_drift is None)
    gate = _drift_gate(report, args)
    if args.json:
        print(json.dumps({**report.to_dict(), **({"gate": gate.to_dict()} if gate else {})}, indent=2))
    elif gate is None:
        print("\n".join(report.summary_lines()))
    else:
        print("\n".join([*drift_lines(report, args.metric), gate.line()]))
    if args.report:
        write_report(args.report, {"title": f"validate {args.reference} vs {args.candidate}",
                                   "validation": report})
    if gate is not None and not gate.passed:
        raise ValidationFailed(gate.line())
    if gate is None and not report.passed:
        raise ValidationFailed(failure_message(report))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="compare a candidate model's outputs with a reference model's",
        description="Run both models in onnxruntime (CPU, graph optimizations off) on the same inputs and "
                    "compare every output element by element, or, with --max-drift, bound how far the "
                    "candidate's outputs moved (a pruned model checked on held-out data). Exit codes: 0 "
                    "within tolerance (or the drift budget), 1 outside it, 2 usage error, 3 model or data "
                    "unreadable, 4 report not writable.",
        epilog="examples:\n"
               "  graphprune validate model.onnx folded.onnx                       # same outputs, 4 random inputs\n"
               "  graphprune validate model.onnx slim.onnx --data held-out.npz --max-drift 0.02 --metric top1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="the original model (.onnx)")
    parser.add_argument("candidate", help="the model to check (.onnx)")
    add_validation_arguments(parser)
    add_drift_gate_arguments(parser.add_argument_group("drift budget (instead of the tolerances)"),
                             "pass when the candidate's drift from the reference on these inputs is at most D "
                             "(e.g. 0.01 with --metric cosine: mean cosine similarity >= 0.99); the tolerances "
                             "then do not decide, and onnxruntime runs with its graph optimizations")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    add_report_argument(parser)
    parser.set_defaults(func=_run)
