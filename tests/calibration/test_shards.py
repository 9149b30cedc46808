"""Calibration in shards: exact merges of sums, the same statistics (and written bytes) whether one
process streams the samples or worker processes calibrate shards of them, and workers that read
only their own samples of an image folder."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.calibration import SpaceStats, activation_spaces, calibrate
from graphprune.calibration.collect import SHARD_SAMPLES
from graphprune.calibration.shards import calibrate_sharded, shards, worth_sharding
from graphprune.errors import DataError
from graphprune.execution.executor import LocalExecutor
from graphprune.graph.model import to_proto
from graphprune.rules.base import Space
from graphprune.validation.data_files import iter_inputs
from graphprune.validation.split import DataSplit
from models.zoo import build
from tests.helpers.paths import ROOT
from tests.helpers.planning import analysed

RNG = np.random.default_rng(11)


def test_merged_sums_are_the_sums_of_all_samples():
    batches = [RNG.standard_normal((n, 6, 2, 3)).astype(np.float32) * 3 + 1 for n in (2, 1, 4)]
    first, second = SpaceStats(Space("t", 1), 6, with_gram=True), SpaceStats(Space("t", 1), 6, with_gram=True)
    first.update(batches[0])
    for b in batches[1:]:
        second.update(b)
    first.merge(second)
    rows = np.concatenate([np.moveaxis(b, 1, 0).reshape(6, -1) for b in batches], axis=1).astype(np.float64)
    assert first.count == rows.shape[1] == 7 * 6 and first.shape == (4, 6, 2, 3)
    np.testing.assert_allclose(first.total, rows.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(first.squares, (rows ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(first.gram, rows @ rows.T, rtol=1e-12)
    np.testing.assert_allclose(first.variance, rows.var(axis=1), rtol=1e-9)  # not an average of averages
    with pytest.raises(ValueError, match="cannot merge"):
        first.merge(SpaceStats(Space("t", 1), 5))
    with pytest.raises(ValueError, match="Gram"):
        first.merge(SpaceStats(Space("t", 1), 6))


def test_shards_follow_the_sample_positions_not_the_workers():
    assert shards(range(2 * SHARD_SAMPLES + 3)) == [tuple(range(0, 16)), tuple(range(16, 32)), (32, 33, 34)]
    assert shards([5, 9]) == [(5, 9)]
    with LocalExecutor(jobs=1) as one, LocalExecutor(jobs=2) as two:
        assert not worth_sharding(one, 100) and not worth_sharding(two, SHARD_SAMPLES)
        assert worth_sharding(two, SHARD_SAMPLES + 1) and not worth_sharding(None, 100)


def test_workers_give_the_statistics_of_one_process_bit_for_bit():
    graph, analysis = analysed(build("resnet18"))
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    model = to_proto(graph)
    x = RNG.standard_normal((37, 1, 3, 64, 64)).astype(np.float32)
    positions = [i for i in range(37) if i % 5]  # 29 of them: two shards
    sequential = calibrate(model, spaces, ({"input": x[i]} for i in positions), sizes=sizes, gram=spaces[:3])
    with LocalExecutor(jobs=2) as executor:
        sharded = calibrate_sharded(model, spaces, {"input": x}, positions, executor, sizes=sizes, gram=spaces[:3])
    assert sharded.samples == sequential.samples == 29
    for space, expected in sequential.spaces.items():
        got = sharded.spaces[space]
        assert got.count == expected.count and (got.gram is None) == (space not in spaces[:3])
        for name in ("total", "squares", "absolute", "gram"):
            a, b = getattr(got, name), getattr(expected, name)
            assert (a is None and b is None) or np.array_equal(a, b), (space, name)


def _noise_images(folder, count: int, size: int = 64):
    """``count`` seeded RGB noise images ``img0.png``... in ``folder``."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_a_worker_decodes_only_its_images(tmp_path):
    from onnx import load

    folder = _noise_images(tmp_path / "images", 6)
    model = load(ROOT / "models" / "demo.onnx")
    everything = list(iter_inputs(folder, model))
    (folder / "img2.png").write_bytes(b"not an image")  # a sample the selection below never reads
    chosen = list(iter_inputs(folder, model, select=[1, 4, 5]))
    assert len(chosen) == 3 and all(np.array_equal(c["input"], everything[i]["input"])
                                    for c, i in zip(chosen, (1, 4, 5)))
    with pytest.raises(DataError, match="img2.png"):
        list(iter_inputs(folder, model, select=[2]))


def test_the_split_names_its_calibration_positions():
    model = build("resnet18")
    arrays = {"input": RNG.standard_normal((12, 1, 3, 64, 64)).astype(np.float32)}
    split = DataSplit(arrays, model, eval_split=0.25, seed=3)
    positions = split.calibration_indices()
    assert len(positions) == 9 and not set(positions) & split.held and positions == sorted(positions)
    streamed = list(split.calibration())
    assert all(np.array_equal(f["input"], arrays["input"][i]) for f, i in zip(streamed, positions))
    limited = DataSplit(arrays, model, eval_split=0.25, seed=3, calib_limit=4)
    assert limited.calibration_indices() == positions[:4] and limited.held == split.held


def test_prune_writes_the_same_bytes_with_one_or_two_workers(tmp_path):
    from graphprune.api import prune

    model = build("resnet18")
    calib = {"input": RNG.standard_normal((24, 1, 3, 64, 64)).astype(np.float32)}  # 18 calibrate: two shards
    one = prune(model, ratio=0.4, calib=calib, refit=True, jobs=1)
    two = prune(model, ratio=0.4, calib=calib, refit=True, jobs=2)
    assert to_proto(one.graph).SerializeToString() == to_proto(two.graph).SerializeToString()
    assert one.params_after < one.params_before and one.compensation
