"""The names a user types (criteria, aggregations, layouts...) and their defaults.

Kept free of heavy imports so that the command line can build its parser, and answer
``--help`` and ``--version``, without loading onnx, onnxruntime or numpy.
"""
from __future__ import annotations

#: importance criteria (``--importance``), and those that need calibration data
IMPORTANCE_NAMES = ("l1", "l2", "bn-scale", "fpgm", "random", "activation", "fluctuation", "energy",
                    "reconstruction")
DATA_DRIVEN = frozenset({"activation", "fluctuation", "energy", "reconstruction"})
#: criteria that read the covariance of the activations (calibration keeps Gram matrices for them)
COVARIANCE_DRIVEN = frozenset({"reconstruction"})
#: how a slot's parameter slices combine into one score (``--aggregate``)
AGGREGATES = ("sum", "mean", "max")
#: per-group score normalization of ``--global`` ranking
NORMALIZERS = ("mean", "max", "sum", "none")
#: which families of attention factors may be pruned (``--attention``): whole heads and head dims
#: (each its own group), or only one of them
ATTENTION_MODES = ("both", "heads", "dims")
#: ``--target-<kind>``
TARGET_KINDS = ("macs", "params", "latency")
#: calibration samples used when the user does not say: None is all of the data (streamed)
DEFAULT_CALIB_SAMPLES = None
#: drift metrics (``--metric``): 1 - mean cosine, 1 - top-1 agreement, relative L2 error
DRIFT_METRICS = ("cosine", "top1", "rel")
#: what a budget search removes as much of as it can (``--objective``)
OBJECTIVES = ("macs", "params", "latency")
#: who runs independent evaluations and calibration shards (``--executor``): local processes or a Ray cluster
EXECUTORS = ("local", "ray")
#: fraction of the data held out for the final drift check (``--eval-split``)
DEFAULT_EVAL_SPLIT = 0.25
#: text calibration data: tokens per sentence at most, and the file suffixes taken for text
DEFAULT_MAX_LENGTH = 128
TEXT_SUFFIXES = (".txt", ".text")
#: names of the graph input that marks real tokens (1) and padding (0) in a [batch, sequence] mask
MASK_INPUT_NAMES = ("attention_mask", "input_mask")
#: image folders: tensor layout and channel order
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
#: fractions of a group's slots a sensitivity scan removes by default
DEFAULT_RATIOS = (0.1, 0.3, 0.5, 0.7)
#: calibration samples a sensitivity scan runs per variant, and random samples without --calib
SENSITIVITY_SAMPLES = 8
DEFAULT_RANDOM_SAMPLES = 4
#: repairs (``--repair``): in the order they run; ``refit`` includes ``mean``. ``mean``/``refit`` data
#: travel in plans; ``statistics``/``sequential`` measure the pruned model, so ``apply`` needs --calib
REPAIR_NAMES = ("mean", "refit", "sequential", "statistics")
DATA_REPAIRS = frozenset({"sequential", "statistics"})
#: ``--repair all``
ALL_REPAIRS = ("mean", "sequential", "statistics")
#: the default with calibration data: sequential reconstruction (mean compensation where a consumer
#: cannot be re-fitted) gave the smallest drift on yolox-nano and fastestdet and was within 0.0001 of
#: ``all`` on ultraface (``python benchmarks/bench_quality.py --effect 0.1,0.2``); statistics
#: correction after it made yolox-nano and fastestdet worse
DEFAULT_REPAIR = ("mean", "sequential")


def parse_repair(text) -> tuple[str, ...]:
    """``"mean,statistics"`` (or a sequence of names, ``all``, ``none``) -> names in running order.

    Raises ValueError naming what is not a repair.
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n and n.strip()]
    if names == ["none"] or (not names and not isinstance(text, str)):
        return ()
    chosen = set(ALL_REPAIRS if "all" in names else ())
    unknown = [n for n in names if n not in REPAIR_NAMES and n != "all"]
    if unknown or not names:
        raise ValueError(f"unknown repair {', '.join(unknown) or repr(text)}: choose from "
                         f"{', '.join(REPAIR_NAMES)}, all or none (comma-separated to combine)")
    chosen |= {n for n in names if n != "all"}
    if "refit" in chosen:
        chosen.discard("mean")
    return tuple(n for n in REPAIR_NAMES if n in chosen)
