"""``graphprune plan MODEL -o plan.json``: decide what to remove, as reviewable data.

:func:`add_plan_arguments` and :func:`plan_kwargs` are shared with ``prune`` (plan + apply) and
``sensitivity``; :func:`add_calibration_image_arguments` with the commands that have no
``--data`` of their own.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json

from ..errors import DriftBudgetExceeded, UsageError
from ..vocabulary import (AGGREGATES, ALL_REPAIRS, ATTENTION_MODES, DATA_DRIVEN, DEFAULT_CALIB_SAMPLES,
                          DEFAULT_EVAL_SPLIT, DEFAULT_MAX_LENGTH, DEFAULT_REPAIR, DRIFT_METRICS, EXECUTORS,
                          IMPORTANCE_NAMES, NORMALIZERS, OBJECTIVES, parse_repair)
from .argtypes import fraction, keep_fraction, positive_float, positive_int
from .validate_cmd import add_image_arguments, add_input_shape_argument

EPILOG = """examples:
  graphprune plan model.onnx -o plan.json --ratio 0.3
  graphprune plan model.onnx -o plan.json --target-macs 0.5 --global
  graphprune plan model.onnx -o plan.json --importance fluctuation --calib images/ --calib-samples 64 \\
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
  graphprune plan model.onnx -o plan.json --target-macs 0.7 --importance fluctuation --calib inputs.npz --refit
  graphprune plan bert.onnx -o plan.json --target-params 0.8 --importance fluctuation --calib sentences.txt \\
      --tokenizer tokenizer.json --calib-samples 256 --max-length 128
  graphprune plan model.onnx -o plan.json --ratio 0.5 --round-to 8 --max-ratio 0.7 --exclude '*head*' \\
      --config overrides.toml --export-masks masks.json
  graphprune plan model.onnx -o plan.json --calib images/ --max-drift 0.01 --objective params
  graphprune apply model.onnx plan.json -o slim.onnx

The plan lists every dependency group, its removed slots and the kept indices of every
parameter (initializer and axis), the predicted parameters and MACs, and a SHA-256 of the model;
edit it and apply it later with graphprune apply. Targets are fractions of the original model
(as given, before BatchNorm folding) to keep. With --max-drift (see graphprune prune --help) the
plan is applied to a copy and checked on held-out samples before it is written."""


#: fraction of slots removed when neither --ratio nor a target is given
DEFAULT_RATIO = 0.3


def add_criterion_arguments(parser: argparse.ArgumentParser) -> None:
    """--importance, --aggregate and the calibration data options."""
    group = parser.add_argument_group("importance (which slots go first)")
    group.add_argument("--importance", choices=IMPORTANCE_NAMES, default=None, metavar="NAME",
                       help="criterion: l1, l2 (magnitude of every parameter slice), bn-scale (|gamma| of the "
                            "BatchNorms, scored before folding), fpgm (distance of the producer filters to their "
                            "geometric median), random (seeded baseline), activation (mean |x|, needs --calib), "
                            "fluctuation (Var(x) x consumer weight norm, needs --calib), energy (E[x^2] x consumer "
                            "weight norm, needs --calib), reconstruction (output error left after the least-squares "
                            "re-fit of the rest, removed greedily, per parameter: structured Optimal Brain Surgeon; "
                            "needs --calib, keeps an n x n covariance per consumer input up to n = 2048; use with "
                            "--repair refit or mean,sequential and --global --normalize none); default: fluctuation "
                            "(with compensation) when --calib is given, else l2")
    group.add_argument("--aggregate", choices=AGGREGATES, default="sum",
                       help="how l1/l2/bn-scale/fpgm combine a slot's slices: sum (default), mean, max")
    group.add_argument("--calib", metavar="PATH", help="calibration data for data-driven criteria and compensation: "
                       ".npz (arrays named after the inputs), .npy (one-input models), a folder of images, or a "
                       "text file of sentences (one per line) with --tokenizer")
    group.add_argument("--calib-samples", type=positive_int, default=DEFAULT_CALIB_SAMPLES, metavar="N",
                       help="use the first N calibration samples (sentences of a text file; default: all of "
                            "them, streamed)")
    group.add_argument("--tokenizer", metavar="FILE", help="a Hugging Face tokenizer.json that turns a text --calib "
                       "into input_ids/attention_mask/token_type_ids (needs the tokenizers package: pip install "
                       "'graphprune[text]'); padded tokens are left out of the statistics")
    group.add_argument("--max-length", type=positive_int, default=DEFAULT_MAX_LENGTH, metavar="N",
                       help=f"tokens per sentence at most, with --tokenizer (default {DEFAULT_MAX_LENGTH})")


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-drift and what it measures (shared by plan and prune)."""
    group = parser.add_argument_group("drift budget (how far the outputs may move, on your data)")
    group.add_argument("--max-drift", type=positive_float, metavar="D",
                       help="without --ratio or a --target-*: search the per-group ratios that remove the most of "
                            "--objective while the drift on held-out samples stays <= D (needs --calib); with "
                            "them: a gate. A model that misses D exits 1 and is not written. E.g. 0.01 with "
                            "--metric cosine means a mean cosine similarity >= 0.99")
    group.add_argument("--metric", choices=DRIFT_METRICS, default="cosine",
                       help="drift: cosine (1 - mean cosine similarity of each output to the original's, worst "
                            "output; default), top1 (1 - top-1 agreement of class-score outputs), rel (relative "
                            "L2 error)")
    group.add_argument("--objective", choices=OBJECTIVES, default=None,
                       help="what the search removes as much of as it can: macs (default), params, or latency "
                            "(per-node onnxruntime timings of this machine)")
    group.add_argument("--eval-split", type=fraction, default=None, metavar="F",
                       help=f"fraction of --calib held out (seeded) for the final drift check, never used to "
                            f"calibrate or search (default {DEFAULT_EVAL_SPLIT:g}, none when --calib has a single "
                            "sample; with --data, --data is checked instead)")
    add_executor_arguments(group)


def add_executor_arguments(group) -> None:
    """--jobs, --executor and --ray-address: who runs calibration shards and candidate evaluations."""
    group.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                       help="workers calibrating shards of --calib and measuring candidates: local processes "
                            "(default: one per CPU), or Ray actors with --executor ray (default: one per CPU of "
                            "the cluster)")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="who runs them: local (worker processes on this machine, the default) or ray (a Ray "
                            "cluster: --ray-address, else RAY_ADDRESS, else a local Ray; needs the ray extra: "
                            "pip install \"graphprune[ray]\"). The results are the same")
    group.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                       help="the Ray cluster of --executor ray (default: the RAY_ADDRESS environment variable, "
                            "else a local Ray started for this command)")


def executor_kwargs(args: argparse.Namespace) -> dict:
    return {"jobs": args.jobs, "executor": args.executor, "ray_address": args.ray_address}


def add_plan_arguments(parser: argparse.ArgumentParser, *, ratio_help: str | None = None) -> None:
    """Every planning option (shared by plan and prune)."""
    add_criterion_arguments(parser)
    add_budget_arguments(parser)
    group = parser.add_argument_group("planning (how many go, where)")
    group.add_argument("--ratio", type=fraction, default=None,
                       help=ratio_help or "fraction of the slots removed from every prunable group (with --global: "
                                          "of all prunable slots), rounded down, at least one kept (default 0.3)")
    group.add_argument("--global", dest="global_rank", action="store_true",
                       help="rank slots across groups (scores normalized per group) instead of the same ratio in "
                            "every group")
    group.add_argument("--normalize", choices=NORMALIZERS, default="mean",
                       help="per-group score normalization for --global ranking (default mean)")
    group.add_argument("--round-to", type=positive_int, default=1, metavar="N",
                       help="keep a multiple of N slots in every pruned group (hardware alignment), e.g. 8")
    group.add_argument("--min-channels", type=positive_int, default=1, metavar="N",
                       help="keep at least N slots in every group (default 1)")
    group.add_argument("--max-ratio", type=fraction, default=None, metavar="R",
                       help="remove at most this fraction of any group's slots (e.g. 0.7)")
    group.add_argument("--exclude", action="append", metavar="GLOB",
                       help="keep every group touching a node whose name matches GLOB (repeatable)")
    group.add_argument("--config", metavar="FILE", help="per-node overrides (.json or .toml): entries with a node "
                       "glob and ratio / max_ratio / min_channels / round_to / exclude")
    targets = group.add_mutually_exclusive_group()
    targets.add_argument("--target-macs", type=keep_fraction, metavar="F",
                         help="search the ratio (or --global threshold) so that F of the original MACs are kept, "
                              "within 1%%, e.g. 0.5")
    targets.add_argument("--target-params", type=keep_fraction, metavar="F",
                         help="the same for parameters, e.g. 0.6")
    targets.add_argument("--target-latency", type=keep_fraction, metavar="F",
                         help="keep F of the onnxruntime latency measured on this machine (coarse search, 1 "
                              "thread; every step is reported), e.g. 0.7")
    add_repair_arguments(group)
    group.add_argument("--attention", choices=ATTENTION_MODES, default="both",
                       help="what attention loses: both (default: whole heads and head dims, each its own group, "
                            "--ratio applying to each), heads (whole heads only) or dims (head dims only)")
    group.add_argument("--keep-bn", action="store_true", help="do not fold BatchNormalization first")
    group.add_argument("--strict-initializer-inputs", action="store_true",
                       help="treat initializers that are also graph inputs as overridable (not pruned)")


def repair_names(text: str) -> str:
    """argparse type: a comma-separated list of repairs (checked here, resolved by the options)."""
    try:
        parse_repair(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_repair_arguments(group) -> None:
    """--repair and its older spellings --compensate, --no-compensate, --refit."""
    group.add_argument("--repair", type=repair_names, metavar="NAMES",
                       help="what repairs the removal, comma-separated: mean (fold the removed channels' "
                            "calibration means into the consumers' biases), refit (mean, plus the removed channels "
                            "reconstructed from the kept ones by ridge least squares), sequential (re-fit every "
                            "consumer, layer by layer, on the inputs it sees in the pruned model), statistics "
                            "(restore every producer output channel's calibration mean and variance), all "
                            f"({','.join(ALL_REPAIRS)}), none. Needs --calib; default with --calib: "
                            f"{','.join(DEFAULT_REPAIR)}, without: none")
    comp = group.add_mutually_exclusive_group()
    comp.add_argument("--compensate", dest="compensate", action="store_true", default=None,
                      help="the same as --repair mean")
    comp.add_argument("--no-compensate", dest="compensate", action="store_false",
                      help="the same as --repair none (plain removal)")
    group.add_argument("--refit", action="store_true", help="the same as --repair refit")


def add_calibration_image_arguments(parser: argparse.ArgumentParser) -> None:
    """Preprocessing of an image-folder --calib (prune shares the --data image options instead)."""
    add_image_arguments(parser, "--calib")


def image_options(args: argparse.Namespace) -> dict:
    return {"mean": args.mean, "std": args.std, "size": args.size, "layout": args.layout,
            "channel_order": args.channel_order}


def plan_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`graphprune.api.plan` from parsed options."""
    targets = any(v is not None for v in (args.target_macs, args.target_params, args.target_latency))
    searching = args.max_drift is not None and args.ratio is None and not targets
    ratio = None if searching else DEFAULT_RATIO if args.ratio is None else args.ratio
    return {"ratio": ratio, "importance": args.importance, "max_drift": args.max_drift, "metric": args.metric,
            "objective": args.objective, "eval_split": args.eval_split, **executor_kwargs(args),
            "aggregate": args.aggregate, "global_rank": args.global_rank, "normalize": args.normalize, "round_to": args.round_to,
            "min_channels": args.min_channels, "max_ratio": 1.0 if args.max_ratio is None else args.max_ratio,
            "exclude": tuple(args.exclude or ()), "config": args.config, "target_macs": args.target_macs,
            "target_params": args.target_params, "target_latency": args.target_latency, "calib": args.calib,
            "calib_samples": args.calib_samples, "tokenizer": args.tokenizer, "max_length": args.max_length,
            "compensate": args.compensate, "refit": args.refit, "repair": args.repair,
            "keep_bn": args.keep_bn, "attention": args.attention,
            "strict_initializer_inputs": args.strict_initializer_inputs}


def check_plan_arguments(args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see (before any work is done)."""
    if args.calib is None and args.importance in DATA_DRIVEN:
        raise UsageError(f"--importance {args.importance} is data-driven: give calibration data with --calib PATH "
                         "(.npz, .npy or a folder of images)")
    if args.calib is None and (args.compensate or args.refit):
        raise UsageError(f"{'--refit' if args.refit else '--compensate'} needs calibration data: give it with "
                         "--calib PATH")
    if args.refit and args.compensate is False:
        raise UsageError("--refit compensates by construction; drop --no-compensate")
    if args.repair is not None and (args.compensate is not None or args.refit):
        raise UsageError("give --repair or --compensate/--no-compensate/--refit, not both")
    if args.calib is None and args.repair is not None and parse_repair(args.repair):
        raise UsageError(f"--repair {args.repair} needs calibration data: give it with --calib PATH")
    if args.ratio is not None and any(v is not None for v in (args.target_macs, args.target_params,
                                                                args.target_latency)):
        raise UsageError("give either --ratio or a --target-*, not both (a target searches the ratio)")


def _run(args: argparse.Namespace) -> int:
    from ..io import check_output_path

    check_plan_arguments(args)
    out = check_output_path(args.output, (args.model,))
    if args.export_masks:
        check_output_path(args.export_masks, (args.model,))
    if args.calib is None and any(v is not None for v in (args.mean, args.std, args.size)):
        raise UsageError("--mean/--std/--size apply to an image folder given with --calib")
    from ..api import plan
    from ..pipeline.load import load
    from ..planning.plan_file import write_masks
    from ..progress import bars_visible
    from ..validation import parse_input_shapes

    try:
        result = plan(load(args.model), **plan_kwargs(args), input_shapes=parse_input_shapes(args.input_shape),
                      seed=args.seed, image_options=image_options(args), progress=bars_visible(),
                      label=Path(args.model).name)
    except DriftBudgetExceeded as exc:
        if exc.result is not None and not args.json:
            print("\n".join(exc.result.summary_lines()))
        raise
    result.plan.save(out)
    if args.export_masks:
        write_masks(args.export_masks, result.masks())
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print("\n".join(result.summary_lines()))
        print(f"wrote {out}" + (f" and {args.export_masks}" if args.export_masks else ""))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan", help="decide which channels to remove and write the decision as a JSON plan",
        description="Score every slot of every prunable dependency group, choose which ones go (by ratio, global "
                    "ranking or a MAC/parameter/latency target) and write the decision as a JSON plan tied to a "
                    "hash of the model. Nothing is pruned: apply the plan with graphprune apply.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="input model (.onnx)")
    parser.add_argument("-o", "--output", required=True, metavar="PLAN", help="plan file to write (.json)")
    add_plan_arguments(parser)
    add_calibration_image_arguments(parser)
    parser.add_argument("--export-masks", metavar="FILE", help="also write initializer -> kept indices per axis "
                        "(names of the model as given, BatchNorm included) for fine-tuning in the source framework")
    parser.add_argument("--seed", type=int, default=0, help="seed of random choices (random importance; default 0)")
    add_input_shape_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a summary")
    parser.set_defaults(func=_run)
