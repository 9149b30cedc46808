"""Validation: run a reference and a candidate in onnxruntime on the same inputs and compare.

    from graphprune.validation import validate, load_inputs, make_feeds
    report = validate("model.onnx", "slim.onnx", data="inputs.npz", rtol=1e-4, atol=1e-5)
    print("\\n".join(report.summary_lines())); assert report.passed

Names are imported on first use, so importing the package stays cheap.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_RANDOM_SAMPLES": ".compare",
    "ValidationReport": ".compare",
    "validate": ".compare",
    "iter_inputs": ".data",
    "load_inputs": ".data",
    "InputSpec": ".feeds",
    "make_feeds": ".feeds",
    "model_inputs": ".feeds",
    "parse_input_shape": ".feeds",
    "parse_input_shapes": ".feeds",
    "resolve_shapes": ".feeds",
    "OutputMetrics": ".metrics",
    "compare_arrays": ".metrics",
    "looks_like_scores": ".metrics",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
