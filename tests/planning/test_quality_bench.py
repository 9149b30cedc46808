"""benchmarks/bench_quality.py: its metrics have known answers and one small run produces the table."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers.paths import ROOT, shared_model

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_quality as bq  # noqa: E402


def test_iou_nms_and_f1_known_answers():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    assert bq.iou(boxes[0], boxes[1:]).round(4).tolist() == [round(81 / 119, 4), 0.0, 1.0]
    kept, classes, scores = bq.nms(boxes, np.array([0, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6]), 0.5)
    assert kept.tolist() == [[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]] and classes.tolist() == [0, 0, 1]
    reference = (boxes[[0, 2]], np.array([0, 0]), np.array([0.9, 0.7]))
    assert bq.detection_f1(reference, reference) == 1.0
    shifted = (boxes[[1]], np.array([0]), np.array([0.9]))      # IoU 0.68 with the first: a match
    assert bq.detection_f1(reference, shifted) == pytest.approx(2 / 3)
    other_class = (boxes[[0]], np.array([1]), np.array([0.9]))
    assert bq.detection_f1(reference, other_class) == 0.0
    assert bq.detection_f1((boxes[:0], np.zeros(0), np.zeros(0)), reference) is None
    assert bq.cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(2 ** -0.5)


def test_photos_come_from_scikit_image_and_crops_are_seeded():
    first, again = bq.crops(3), bq.crops(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(c.ndim == 3 and c.shape[2] == 3 and c.shape[0] == c.shape[1] for c in first)
    assert len(bq.eval_photos()) == len(bq.EVAL_PHOTOS) + 2
    assert not set(bq.CALIB_PHOTOS) & set(bq.EVAL_PHOTOS)


def test_one_level_on_ultraface(capsys):
    shared_model("ultraface-slim-320.onnx")
    assert bq.main(["--models", "ultraface-slim-320", "--removed", "0.1", "--criteria", "l2,fluctuation+comp",
                    "--calib", "4"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| ultraface-slim-320 | 10%"))
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    l2, comp = (tuple(float(v) for v in c.split(" / ")) for c in cells)
    assert 0 < l2[0] <= 1 and 0 < comp[0] <= 1 and comp[0] > l2[0]
    assert "`python benchmarks/bench_quality.py --models ultraface-slim-320" in out
