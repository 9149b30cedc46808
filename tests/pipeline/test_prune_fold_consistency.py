"""prune on a BN-kept model removes the same channels as on the already-folded model."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.api import prune
from graphprune.graph.model import from_proto
from graphprune.passes.fold import fold
from models.zoo import build
from tests.helpers.onnxrt import random_feeds, relative_error, run


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "efficientnet", "unet"])
@pytest.mark.parametrize("importance", ["l2", "random"])
def test_same_channels_with_and_without_prior_folding(name, importance):
    kept_bn = build(name, opset=17, keep_bn=True)
    folded = fold(from_proto(build(name, opset=17, keep_bn=True))).model
    a = prune(kept_bn, ratio=0.4, importance=importance, validate=False, count_macs=False)
    b = prune(folded, ratio=0.4, importance=importance, validate=False, count_macs=False)
    assert a.removed.keys() == b.removed.keys()
    for gid in a.removed:
        assert np.array_equal(a.removed[gid], b.removed[gid])
    shapes_a = {t.name: tuple(t.dims) for t in a.model.graph.initializer}
    shapes_b = {t.name: tuple(t.dims) for t in b.model.graph.initializer}
    assert shapes_a == shapes_b
    feeds = random_feeds(a.model)
    out_a, out_b = run(a.model, feeds), run(b.model, feeds)
    assert max(relative_error(out_a[k], out_b[k]) for k in out_a) < 1e-5
