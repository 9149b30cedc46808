"""Validation: run a reference and a candidate in onnxruntime on the same inputs and compare.

    from graphprune.validation import validate, load_inputs, make_feeds
    report = validate("model.onnx", "slim.onnx", data="inputs.npz", rtol=1e-4, atol=1e-5)
    print("\\n".join(report.summary_lines())); assert report.passed
"""
from .compare import DEFAULT_RANDOM_SAMPLES, ValidationReport, validate
from .data import iter_inputs, load_inputs
from .feeds import InputSpec, make_feeds, model_inputs, parse_input_shape, parse_input_shapes, resolve_shapes
from .metrics import OutputMetrics, compare_arrays, looks_like_scores

__all__ = [
    "validate", "ValidationReport", "OutputMetrics", "load_inputs", "iter_inputs", "make_feeds", "model_inputs",
    "InputSpec", "parse_input_shape", "parse_input_shapes", "resolve_shapes", "compare_arrays",
    "looks_like_scores", "DEFAULT_RANDOM_SAMPLES",
]
