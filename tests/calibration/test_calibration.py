"""Calibration: streamed per-channel statistics equal the batch computation; data sources; errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphprune.calibration import CalibrationStats, SpaceStats, activation_spaces, calibrate, calibration_feeds
from graphprune.errors import DataError, UsageError
from graphprune.graph.model import to_proto
from graphprune.rules.base import Space
from tests.helpers.onnxrt import run
from tests.helpers.paths import ROOT
from tests.helpers.planning import analysed, conv_chain, feed_list

RNG = np.random.default_rng(3)


def test_streamed_sums_equal_the_batch_statistics():
    scale = np.array([1, 2, 3, 4, 5])[None, :, None, None]
    batches = [RNG.standard_normal((n, 5, 3, 4)) * scale + 1.5 for n in (1, 3, 2)]
    stats = SpaceStats(Space("t", 1), 5, with_gram=True)
    for b in batches:
        stats.update(b.astype(np.float32))
    rows = np.concatenate([np.moveaxis(b.astype(np.float32), 1, 0).reshape(5, -1) for b in batches], axis=1)
    rows = rows.astype(np.float64)
    assert stats.count == rows.shape[1] == 6 * 12
    np.testing.assert_allclose(stats.mean, rows.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, rows.var(axis=1), rtol=1e-9)
    np.testing.assert_allclose(stats.mean_abs, np.abs(rows).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(rows, bias=True), rtol=1e-9, atol=1e-12)
    # bounded memory: only per-position sums are kept, whatever the number of samples
    kept = [v for v in vars(stats).values() if isinstance(v, np.ndarray)]
    assert sum(a.size for a in kept) == 3 * 5 + 25
    with pytest.raises(ValueError, match="expected 5 positions"):
        stats.update(np.zeros((1, 4, 3, 4)))


def test_calibrate_exposes_activations_and_counts_samples():
    w1, w2 = RNG.standard_normal((4, 2, 1, 1)), RNG.standard_normal((3, 4, 1, 1))
    graph, analysis = analysed(conv_chain(w1, w2, hw=5))
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    assert spaces == [Space("a", 1)]
    m = to_proto(graph)
    feeds = feed_list(m, 3, seed=2)
    before = m.SerializeToString()
    stats = calibrate(m, spaces, (f for f in feeds), sizes={spaces[0]: 4}, source="test")
    assert m.SerializeToString() == before, "the model is never modified"
    assert stats.samples == 3 and stats.get(spaces[0]).count == 3 * 25
    a = np.maximum(np.einsum("oc,nchw->nohw", w1[:, :, 0, 0], np.stack([f["x"][0] for f in feeds])), 0)
    np.testing.assert_allclose(stats.get(spaces[0]).mean, a.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert stats.get(spaces[0]).shape == (1, 4, 5, 5)
    assert run(m, feeds[0]).keys() == {"y"}


def test_calibration_errors_name_the_problem(tmp_path):
    graph, _ = analysed(conv_chain(RNG.standard_normal((4, 2, 1, 1)), RNG.standard_normal((3, 4, 1, 1))))
    m = to_proto(graph)
    space = Space("a", 1)
    with pytest.raises(DataError, match="no calibration samples"):
        calibrate(m, [space], [], sizes={space: 4})
    with pytest.raises(UsageError, match="--calib"):
        calibration_feeds(None, m)
    with pytest.raises(DataError, match="no such file"):
        list(calibration_feeds(tmp_path / "missing.npz", m))
    assert isinstance(CalibrationStats().to_dict(), dict)


def _photo_crops(folder: Path, count: int, size: int = 64) -> Path:
    from PIL import Image
    from skimage import data

    folder.mkdir()
    rng = np.random.default_rng(0)
    photos = [data.astronaut(), data.chelsea(), data.coffee()]
    for i in range(count):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        Image.fromarray(img[y:y + size, x:x + size]).save(folder / f"crop{i:02d}.png")
    return folder


def test_image_folder_calibration_is_streamed_and_limited(tmp_path):
    from graphprune.api import plan

    folder = _photo_crops(tmp_path / "crops", 5)
    result = plan(ROOT / "models" / "demo.onnx", importance="fluctuation", calib=folder, calib_samples=4,
                  image_options={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    assert result.calibration.samples == 4
    assert result.plan.options["calibration"] == {"source": str(folder), "samples": 4}
    stats = next(iter(result.calibration.spaces.values()))
    assert stats.count > 0 and np.all(np.isfinite(stats.variance))
