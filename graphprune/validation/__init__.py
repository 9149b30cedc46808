"""Validation: run a reference and a candidate in onnxruntime on the same inputs and compare.

    from graphprune.validation import validate, load_inputs, make_feeds
    report = validate("model.onnx", "slim.onnx", data="inputs.npz", rtol=1e-4, atol=1e-5)
    print("\\n".join(report.summary_lines())); assert report.passed

Names are imported on first use, so importing the package stays cheap.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_RANDOM_SAMPLES": ".compare",
    "FOLD_RTOL_OF_SCALE": ".compare",
    "ValidationReport": ".compare",
    "validate": ".compare",
    "iter_inputs": ".data_files",
    "load_inputs": ".data_files",
    "make_feeds": ".feeds",
    "random_feeds": ".feeds",
    "resolve_shapes": ".feeds",
    "InputSpec": ".inputs",
    "model_inputs": ".inputs",
    "parse_input_shape": ".inputs",
    "parse_input_shapes": ".inputs",
    "OutputMetrics": ".metrics",
    "compare_arrays": ".metrics",
    "looks_like_scores": ".metrics",
    "scale_violation": ".metrics",
    "PendingShapes": ".sizes",
    "ResolvedShapes": ".sizes",
    "resolve_input_shapes": ".sizes",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
