"""Validation: run a reference and a candidate in onnxruntime on the same inputs and compare.

    from graphprune.validation import validate, load_inputs, make_feeds
    report = validate("model.onnx", "slim.onnx", data="inputs.npz", rtol=1e-4, atol=1e-5)
    print("\\n".join(report.summary_lines())); assert report.passed
"""
from .compare import DEFAULT_RANDOM_SAMPLES, FOLD_RTOL_OF_SCALE, ValidationReport, validate
from .data import iter_inputs, load_inputs
from .feeds import make_feeds, random_feeds, resolve_shapes
from .inputs import InputSpec, model_inputs, parse_input_shape, parse_input_shapes
from .metrics import OutputMetrics, compare_arrays, looks_like_scores, scale_violation
from .sizes import ResolvedShapes, resolve_input_shapes

__all__ = [
    "validate", "ValidationReport", "OutputMetrics", "load_inputs", "iter_inputs", "make_feeds", "random_feeds",
    "model_inputs", "InputSpec", "parse_input_shape", "parse_input_shapes", "resolve_shapes", "resolve_input_shapes",
    "ResolvedShapes", "compare_arrays", "scale_violation", "looks_like_scores", "DEFAULT_RANDOM_SAMPLES",
    "FOLD_RTOL_OF_SCALE",
]
