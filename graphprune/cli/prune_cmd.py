"""``graphprune prune MODEL -o OUT``: plan and apply in one go, and check the result."""
from __future__ import annotations

import argparse
import json

from ..errors import DriftBudgetExceeded
from .plan_cmd import add_plan_arguments, check_plan_arguments, plan_kwargs
from .validate_cmd import add_report_argument, add_validation_arguments, validation_kwargs

EPILOG = """examples:
  graphprune prune model.onnx -o slim.onnx --ratio 0.3
  graphprune prune model.onnx -o slim.onnx --ratio 0.5 --importance l1 --exclude '*head*'
  graphprune prune model.onnx -o slim.onnx --target-macs 0.5 --global --round-to 8
  graphprune prune model.onnx -o slim.onnx --target-macs 0.6 --importance fluctuation --calib images/ \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --data val-images/
  graphprune prune bert.onnx -o slim.onnx --target-params 0.8 --importance reconstruction --global \\
      --normalize none --calib sentences.txt --tokenizer tokenizer.json --repair mean,sequential
  graphprune prune model.onnx -o slim.onnx --ratio 0.3 --keep-bn --no-validate --export-masks masks.json
  graphprune prune model.onnx -o slim.onnx --ratio 0.3 --data images/ --report prune.html
  graphprune prune model.onnx -o slim.onnx --calib images/ --max-drift 0.01
  graphprune prune model.onnx -o slim.onnx --calib images/ --max-drift 0.05 --metric top1 --objective latency \\
      --eval-split 0.2 --jobs 4 --report budget.html
  graphprune prune model.onnx -o slim.onnx --ratio 0.3 --calib images/ --max-drift 0.02
  graphprune prune model.onnx -o slim.onnx --calib data.npz --max-drift 0.01 --executor ray \\
      --ray-address 10.0.0.5:6379

prune = plan + apply (graphprune plan writes the decision for review; graphprune apply applies
it). By default BatchNormalization is folded first, and the output is checked twice: against its
oracle (the original with the removed channels' consumers zeroed, after compensation: must match
exactly) and against the original (drift: cosine similarity, top-1 agreement), on --data or
random inputs. The image options (--mean, --std, --size, --layout, --channel-order) apply to
--data and --calib folders alike.

With --calib, a seeded --eval-split of the data (default 0.25) is held out: calibration, repair
and any search never see it, and every drift printed comes from it (or from --data when given).
--max-drift D alone searches the per-group ratios that remove the most MACs (--objective) while
that held-out drift stays within D: sensitivity of every group alone, a search of combined
candidates on calibration samples, then one check of the model it would write (rolling back the
most sensitive step while it misses). With --ratio or a --target-*, --max-drift is a gate. Either
way a model that misses D exits 1, is not written, and the summary (and --report) say by how much.

Calibration shards and candidate evaluations run on --jobs local worker processes, or on the
actors of a Ray cluster with --executor ray (the ray extra): the same plans, statistics and bytes.
Ctrl-C stops the workers and writes nothing (exit 130)."""


def _run(args: argparse.Namespace) -> int:
    from ..api import prune
    from ..io import check_output_path, save_model
    from ..lazy import import_beside
    from ..pipeline.load import load
    from ..planning.plan_file import write_masks
    from ..report import check_report_path

    check_plan_arguments(args)
    out = check_output_path(args.output, (args.model,), force=args.force)
    if args.report:
        check_report_path(args.report)
    if args.export_masks:
        check_output_path(args.export_masks, (args.model, args.output))
    vkw = _validation_kwargs(args)
    import_beside("networkx")  # the analysis' graph library, imported while the model is read
    source = load(args.model)
    title = f"prune {args.model} -> {out}"
    try:
        result = prune(source, **plan_kwargs(args), validate=not args.no_validate, data=vkw["data"],
                       samples=vkw["samples"], input_shapes=vkw["input_shapes"], seed=args.seed,
                       progress=vkw["progress"], image_options=vkw["image_options"])
    except DriftBudgetExceeded as exc:
        if exc.result is not None:
            print_result(args, None, exc.result, title)
        raise
    save_model(result.graph, out, inputs=(args.model,), force=args.force)
    if args.export_masks:
        from ..pipeline.masks import export_masks
        write_masks(args.export_masks, export_masks(source, result.analysis, result.removed,
                                                    folded=not args.keep_bn,
                                                    strict_initializer_inputs=args.strict_initializer_inputs))
    print_result(args, out, result, title)
    return 0


def print_result(args: argparse.Namespace, out, result, title: str) -> None:
    """The summary (or JSON) of a prune/apply result, and its report when asked; ``out`` None: nothing was
    written (the result missed --max-drift)."""
    if args.json:
        print(json.dumps({"output": None if out is None else str(out), **result.to_dict()}, indent=2))
    else:
        print("\n".join(result.summary_lines()))
        if out is not None:
            print(f"wrote {out}" + (f" and {args.export_masks}" if args.export_masks else ""))
    if args.report:
        from ..report import write_report

        write_report(args.report, prune_report(title, result))


def _validation_kwargs(args: argparse.Namespace) -> dict:
    """validation_kwargs, but the image options may serve --calib alone (without --data)."""
    data = args.data
    if data is None and args.calib is not None:
        args.data = args.calib  # let the shared check accept --mean/--std/--size for a --calib folder
        try:
            vkw = validation_kwargs(args)
        finally:
            args.data = data
        vkw["data"] = None
        return vkw
    return validation_kwargs(args)


def prune_report(title: str, result) -> dict:
    """Report sections of a prune or apply result."""
    return {"title": title, "summary": result.summary_lines(), "channels": result.layers,
            "groups": group_rows(result),
            **({"drift budget": result.gate.to_dict()} if getattr(result, "gate", None) is not None else {}),
            **({"budget search": result.budget.group_rows()} if getattr(result, "budget", None) is not None else {}),
            **({"exactness": result.oracle} if result.oracle is not None else {}),
            **({"drift": result.drift} if result.drift is not None else {}),
            "details": result.to_dict()}


def group_rows(result) -> list[dict]:
    rows = []
    for g in result.analysis.groups:
        removed = len(result.removed.get(g.id, ()))
        rows.append({"group": g.id, "layer": g.layer, "size": g.n_slots, "removed": removed,
                     "first": str(g.representative),
                     "barriers": sorted({b.reason for b in g.barriers})})
    return rows


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune", help="remove the least important channels (plan + apply) and check the result",
        description="Remove the least important channels of every prunable dependency group consistently "
                    "across all coupled layers, and write a smaller, valid ONNX model whose outputs keep their "
                    "names and shapes.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx)")
    parser.add_argument("-o", "--output", required=True, help="output model path (never the input unless --force)")
    add_plan_arguments(parser)
    parser.add_argument("--export-masks", metavar="FILE", help="also write initializer -> kept indices per axis "
                        "(names of the model as given, BatchNorm included) for fine-tuning in the source framework")
    parser.add_argument("--no-validate", action="store_true", help="skip the oracle and drift checks")
    parser.add_argument("--force", action="store_true", help="allow overwriting the input model")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    add_validation_arguments(parser, samples_help="samples for the checks (default: 2 for the oracle, 4 random "
                             "or all of --data for drift)")
    add_report_argument(parser)
    parser.set_defaults(func=_run)
