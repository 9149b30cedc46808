"""Pruning end to end at the unit level: a model with external data, the zoo across opsets with a
dynamic batch, the ratio's floor and the one slot every group keeps (the ratio's usage check is in
tests/pipeline/test_options.py)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphprune.graph.model import to_proto
from graphprune.surgery.apply import apply_removal
from models.zoo import build
from tests.helpers.onnxrt import random_feeds, run
from tests.helpers.oracle import ORACLE_RTOL, pruning_oracle_check
from tests.helpers.planning import analysed, decide


def test_external_data_model_prunes(tmp_path):
    model = build("resnet18", opset=17)
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=256)
    assert (tmp_path / "ext.onnx.data").stat().st_size > 100_000
    res = pruning_oracle_check(str(path), 0.5)
    assert res.max_rel_error <= ORACLE_RTOL and res.params_after < res.params_before


# --------------------------------------------------------------------------- opsets and dynamic batch
OPSET_CASES = [(name, opset) for opset in (9, 11, 13, 18, 21)
               for name in ("resnet18", "mobilenetv3", "shufflenetv2", "vgg_reshape", "unet", "yolo_neck",
                            "opzoo_a", "opzoo_b", "nhwc", "resnext")]


@pytest.mark.parametrize("name,opset", OPSET_CASES, ids=[f"{n}-opset{o}" for n, o in OPSET_CASES])
def test_zoo_across_opsets_with_dynamic_batch(name, opset):
    model = build(name, opset=opset, batch="N")
    res = pruning_oracle_check(model, 0.5)
    assert res.output_shapes_equal and res.max_rel_error <= ORACLE_RTOL
    assert res.removed_slots > 0 and res.params_after < res.params_before
    # the batch stays symbolic and every output keeps its declared shape
    inp = res.pruned.graph.input[0].type.tensor_type.shape.dim[0]
    assert inp.dim_param == "N"
    orig = {o.name: o.type for o in model.graph.output}
    assert {o.name: o.type for o in res.pruned.graph.output} == orig


def test_pruned_model_runs_at_batch_three():
    model = build("mobilenetv2", opset=13, batch="N")
    res = pruning_oracle_check(model, 0.4)
    out = run(res.pruned, random_feeds(res.pruned, dynamic=3))
    assert next(iter(out.values())).shape[0] == 3


def test_ratio_floor_and_one_slot_kept():
    m, a = analysed(build("resnet18"))
    d = decide(a, ratio=0.3)
    for g in a.prunable_groups:
        assert len(d.removed.get(g.id, ())) == int(np.floor(0.3 * g.n_slots))
    d = decide(a, ratio=0.999)
    for g in a.prunable_groups:
        assert len(d.removed[g.id]) <= g.n_slots - 1
    apply_removal(m, a, d.removed)
    onnx.checker.check_model(to_proto(m), full_check=True)
