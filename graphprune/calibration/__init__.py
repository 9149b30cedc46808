"""Calibration: run data through onnxruntime and keep per-channel statistics of activations.

    from graphprune.calibration import calibrate, calibration_feeds
    stats = calibrate(model, spaces, calibration_feeds("images/", model, limit=32))
    stats.get(space).variance
"""
from .collect import calibrate, calibration_feeds, expose, fingerprint
from .sites import ConsumerSite, ContractionSite, activation_spaces, consumer_sites, contraction_sites
from .stats import GRAM_LIMIT, CalibrationStats, SpaceStats
from .tokens import TokenMask, token_mask

__all__ = ["calibrate", "calibration_feeds", "expose", "fingerprint", "ConsumerSite", "consumer_sites",
           "ContractionSite", "contraction_sites", "activation_spaces", "CalibrationStats", "SpaceStats", "GRAM_LIMIT",
           "TokenMask", "token_mask"]
