"""Seeded random feeds of transformers: integer inputs that index a constant table stay inside it,
attention masks are 0/1 padding patterns (so outputs are finite and the oracle compares numbers)."""
from __future__ import annotations

import numpy as np

from graphprune.validation.feeds import INT_HIGH, index_bounds, make_feeds
from models.transformers import build_transformer
from tests.helpers.onnxrt import run


def test_token_type_ids_stay_inside_their_two_row_table():
    model = build_transformer("bert")  # token types index a table of 2 rows, word ids one of 100
    assert index_bounds(model) == {"input_ids": 100, "token_type_ids": 2}
    feeds = make_feeds(model, 3, seed=0, input_shapes={n: (2, 16) for n in ("input_ids", "attention_mask",
                                                                              "token_type_ids")})
    types = np.stack([f["token_type_ids"] for f in feeds])
    ids = np.stack([f["input_ids"] for f in feeds])
    assert set(np.unique(types)) == {0, 1}
    assert ids.min() >= 0 and ids.max() < INT_HIGH and len(np.unique(ids)) > 2
    assert all(np.isfinite(run(model, f)["last_hidden_state"]).all() for f in feeds)


def test_random_attention_masks_are_padding_patterns():
    model = build_transformer("bert")
    feeds = make_feeds(model, 4, seed=1, input_shapes={n: (3, 10) for n in ("input_ids", "attention_mask",
                                                                             "token_type_ids")})
    for feed in feeds:
        mask = feed["attention_mask"]
        assert mask.dtype == np.int64 and set(np.unique(mask)) <= {0, 1}
        assert (mask[:, 0] == 1).all() and (np.diff(mask, axis=1) <= 0).all()  # ones, then padding
    assert len({int(m.sum()) for f in feeds for m in f["attention_mask"]}) > 3  # lengths vary
