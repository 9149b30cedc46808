"""Calibration: run data through onnxruntime and keep per-channel statistics of activations.

    from graphprune.calibration import calibrate, calibration_feeds
    stats = calibrate(model, spaces, calibration_feeds("images/", model, limit=32))
    stats.get(space).variance

Names are imported on first use, so importing the package (for example for ``sites``, which
importance criteria read) does not import onnxruntime.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "calibrate": ".collect",
    "calibration_feeds": ".collect",
    "expose": ".collect",
    "fingerprint": ".collect",
    "ConsumerSite": ".sites",
    "ContractionSite": ".sites",
    "activation_spaces": ".sites",
    "consumer_sites": ".sites",
    "contraction_sites": ".sites",
    "CalibrationStats": ".stats",
    "GRAM_LIMIT": ".stats",
    "SpaceStats": ".stats",
    "TokenMask": ".tokens",
    "token_mask": ".tokens",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
