"""Padded tokens are left out of calibration statistics (graphprune.calibration.tokens).

The end-to-end check needs no trusted number: a BERT's valid tokens have the same activations
whether a sentence runs alone (no padding) or padded in a batch, so the statistics of a padded
batch must equal those of the sentences run one by one.
"""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.calibration import SpaceStats, activation_spaces, calibrate, expose, token_mask
from graphprune.calibration.tokens import TokenMask, token_axes
from graphprune.graph.model import to_proto
from graphprune.pipeline.analyze import analyze
from graphprune.pipeline.load import load
from graphprune.pipeline.options import Options
from graphprune.pipeline.prepare import prepare
from graphprune.rules.base import Space
from models.transformers import build_transformer
from tests.helpers.onnxrt import session

#: tokens of each sentence of the padded batch (the longest sets the padded length)
LENGTHS = (8, 3, 5)
#: padded and unpadded float32 runs of the same tokens (summation orders differ)
RTOL, ATOL = 1e-4, 1e-6


@pytest.mark.parametrize("mask_dims, dims, channel, expected", [
    (("batch", "sequence"), ("batch", "sequence", 384), 2, (0, 1)),
    (("batch", "sequence"), ("batch", 12, "sequence", 32), 3, (0, 2)),       # queries split into heads
    (("batch", "sequence"), ("batch", 12, 32, "sequence"), 2, (0, 3)),       # keys transposed
    (("batch", "sequence"), ("batch", 12, "sequence", "sequence"), 1, None),  # attention scores: ambiguous
    (("batch", "sequence"), (None, 384), 1, None),                           # tokens flattened into rows
    ((1, 8), (1, 8, 16), 2, (0, 1)),                                         # fixed sizes
    ((2, 8), (2, 8, 8), 2, (0, 1)),                                          # the channel axis is not a candidate
    ((4, 4), (4, 4, 16), 2, None),                                           # batch == sequence: ambiguous
    ((1, 8), (8, 16), 1, (None, 0)),                                         # a batch of one needs no batch axis
])
def test_token_axes_follow_dimension_names_or_unique_sizes(mask_dims, dims, channel, expected):
    assert token_axes(mask_dims, dims, channel) == expected


def test_update_with_valid_tokens_equals_statistics_of_those_tokens():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 5, 4))                 # [batch, heads, sequence, channel]
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    tokens = TokenMask("attention_mask", {"x": (0, 2)})
    valid = tokens.valid({"attention_mask": mask}, "x", x.shape)
    assert valid.shape == (3, 1, 5, 1)
    stats = SpaceStats(Space("x", 3), 4, with_gram=True)
    stats.update(x, valid)
    rows = x.transpose(0, 2, 1, 3)[mask.astype(bool)].reshape(-1, 4)  # valid tokens, both heads
    assert stats.count == 2 * mask.sum()
    np.testing.assert_allclose(stats.mean, rows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, rows.var(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(rows.T, bias=True), rtol=1e-10, atol=1e-12)
    assert tokens.valid({"attention_mask": mask[:, :4]}, "x", x.shape) is None  # mask of another length


def _padded_batch(rng) -> dict[str, np.ndarray]:
    width = max(LENGTHS)
    ids = np.zeros((len(LENGTHS), width), np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(LENGTHS):
        ids[row, :length] = rng.integers(4, 60, length)
        mask[row, :length] = 1
    ids[mask == 0] = 0  # the pad token
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _unpadded_statistics(model, spaces, batch) -> dict:
    """Mean and variance per channel over the valid tokens, each sentence run alone."""
    probe = session(expose(model, [s.tensor for s in spaces]))
    tensors = sorted({s.tensor for s in spaces})
    rows = {s: [] for s in spaces}
    for row, length in enumerate(LENGTHS):
        feed = {name: array[row:row + 1, :length] for name, array in batch.items()}
        values = dict(zip(tensors, probe.run(tensors, feed)))
        for space in spaces:
            array = values[space.tensor]
            rows[space].append(np.moveaxis(array, space.axis, -1).reshape(-1, array.shape[space.axis]))
    return {s: (np.concatenate(r).mean(0), np.concatenate(r).var(0)) for s, r in rows.items()}


def test_padded_batch_statistics_equal_unpadded_sentences():
    source = load(build_transformer("bert"))
    options = Options()
    analyzed = analyze(prepare(source, options), options)
    analysis = analyzed.analysis
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    mask = token_mask(analysis.index, spaces)
    assert mask.input == "attention_mask"
    assert sorted(mask.axes) == sorted({s.tensor for s in spaces})  # every calibrated tensor is masked
    batch = _padded_batch(np.random.default_rng(1))
    model = to_proto(analyzed.prepared.model)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    masked = calibrate(model, spaces, [batch], sizes=sizes, mask=mask)
    padded = calibrate(model, spaces, [batch], sizes=sizes)
    truth = _unpadded_statistics(model, spaces, batch)
    worst_padded = 0.0
    for space in spaces:
        mean, variance = truth[space]
        np.testing.assert_allclose(masked.get(space).mean, mean, rtol=RTOL, atol=ATOL, err_msg=str(space))
        np.testing.assert_allclose(masked.get(space).variance, variance, rtol=RTOL, atol=ATOL, err_msg=str(space))
        worst_padded = max(worst_padded, float(np.abs(padded.get(space).mean - mean).max() / np.abs(mean).max()))
    assert worst_padded > 0.05  # counting padded tokens is visibly wrong: the check above can fail
