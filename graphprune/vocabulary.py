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
#: ``--target-<kind>``
TARGET_KINDS = ("macs", "params", "latency")
#: calibration samples used when the user does not say (the first N of the data)
DEFAULT_CALIB_SAMPLES = 32
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
