"""The names a user types (criteria, aggregations, layouts...) and their defaults.

Kept free of heavy imports so that the command line can build its parser, and answer
``--help`` and ``--version``, without loading onnx, onnxruntime or numpy.
"""
from __future__ import annotations

#: importance criteria (``--importance``), and those that need calibration data
IMPORTANCE_NAMES = ("l1", "l2", "bn-scale", "fpgm", "random", "activation", "fluctuation", "energy")
DATA_DRIVEN = frozenset({"activation", "fluctuation", "energy"})
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
