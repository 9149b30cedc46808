"""The ONNX checker on the pruned model (``apply``): the checker's copy is made from the editable
graph without a second copy of the model (the nodes surgery left alone copied from the analysed
skeleton), and a pruned model that fails the checker is refused."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphprune.errors import PruningError
from graphprune.graph import edit
from graphprune.graph.model import WrittenNodes, from_proto, to_proto, verbatim_proto
from graphprune.input_checks import CHECKER_KEEP_ELEMENTS, checker_copy
from graphprune.pipeline import Options, analyze, decide, load, prepare, score
from graphprune.pipeline.apply import _check_pruned, _checker_weights
from graphprune.surgery.apply import removal_edits
from models.zoo import build
from tests.helpers.models import graph_model

#: the stage's module (``graphprune.pipeline.apply`` the attribute is the stage function)
apply_stage = importlib.import_module("graphprune.pipeline.apply")

F = TensorProto.FLOAT
BIG = CHECKER_KEEP_ELEMENTS + 4  # elements of a weight the checker's copy declares as a graph input


def _matmuls(ir_version=None, external_dir=None):
    """x [2, 4] @ w1 [4, n] @ w2 [n, 4] + b [4], then Gather of BIG columns by a big int64 index
    constant (n = BIG / 4: both weights and the index hold more than CHECKER_KEEP_ELEMENTS)."""
    n = BIG // 4
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["z"], name="mm2"),
             helper.make_node("Add", ["z", "b"], ["s"], name="add"),
             helper.make_node("Gather", ["s", "index"], ["y"], axis=1, name="gather")]
    inits = [numpy_helper.from_array(np.ones((4, n), np.float32), "w1"),
             numpy_helper.from_array(np.ones((n, 4), np.float32), "w2"),
             numpy_helper.from_array(np.ones(4, np.float32), "b"),
             numpy_helper.from_array(np.zeros(BIG, np.int64), "index")]
    m = graph_model(nodes, inits, [helper.make_tensor_value_info("x", F, [2, 4])],
                    [helper.make_tensor_value_info("y", F, [2, BIG])])
    if ir_version is not None:
        m.ir_version = ir_version
        m.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in inits)
    if external_dir is not None:  # b (small) lives in a file next to the model
        (external_dir / "b.bin").write_bytes(np.ones(4, np.float32).tobytes())
        b = m.graph.initializer[2]
        b.ClearField("raw_data")
        b.data_location = TensorProto.EXTERNAL
        b.external_data.add(key="location", value="b.bin")
    return m


@pytest.mark.parametrize("variant", ["ir10", "ir3", "external"])
def test_frame_and_weights_read_as_the_checkers_copy_of_the_skeleton(variant, tmp_path):
    proto = _matmuls(ir_version=3 if variant == "ir3" else None,
                     external_dir=tmp_path if variant == "external" else None)
    model = from_proto(proto)
    frame = to_proto(model, tensors="none")
    merged = onnx.ModelProto.FromString(frame.SerializeToString() + _checker_weights(model, frame).SerializeToString())
    assert merged == checker_copy(to_proto(model, tensors="skeleton"))
    # the small float bias keeps its values (unless in a file); the big weights and the big shape are typed inputs
    kept = {t.name for t in merged.graph.initializer}
    assert kept == (set() if variant == "external" else {"b"})
    inputs = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in merged.graph.input}
    assert inputs["w1"] == [4, BIG // 4] and inputs["w2"] == [BIG // 4, 4] and inputs["index"] == [BIG]
    assert list(inputs)[0] == "x" and len(inputs) == (5 if variant == "ir3" or variant == "external" else 4)


def test_loaded_tensors_of_plain_types_go_into_the_checkers_copy_as_they_are_the_others_through_tensor_into():
    tagged = numpy_helper.from_array(np.arange(4, dtype=np.float32), "tagged")
    tagged.metadata_props.add(key="source", value="test")  # onnx-ir writes metadata again after the copy
    inits = [numpy_helper.from_array(np.arange(4, dtype=np.float32), "plain"), tagged,
             numpy_helper.from_array(np.arange(4, dtype=np.float16), "half"),
             numpy_helper.from_array(np.array([b"a", b"b"], dtype=object), "words"),
             numpy_helper.from_array(np.arange(4, dtype=np.int64), "written")]
    nodes = [helper.make_node("Identity", [t.name], [f"{t.name}_out"], name=t.name) for t in inits]
    outputs = [helper.make_tensor_value_info(f"{t.name}_out", t.data_type, list(t.dims)) for t in inits]
    model = from_proto(graph_model(nodes, inits, [], outputs))
    edit.write_initializer(model.graph.initializers["written"], np.arange(4, 8, dtype=np.int64))
    tensors = {name: value.const_value for name, value in model.graph.initializers.items()}
    verbatim = {name for name, tensor in tensors.items() if verbatim_proto(tensor, name) is tensors[name].raw}
    assert verbatim == {"plain", "half"}  # metadata, a string type, an array a pass wrote: written anew
    assert verbatim_proto(tensors["plain"], "renamed") is None  # tensor_into writes the initializer's own name
    frame = to_proto(model, tensors="none")
    merged = onnx.ModelProto.FromString(frame.SerializeToString() + _checker_weights(model, frame).SerializeToString())
    assert merged == checker_copy(to_proto(model, tensors="skeleton"))
    assert [t.name for t in merged.graph.initializer] == ["plain", "tagged", "half", "words", "written"]
    assert numpy_helper.to_array(merged.graph.initializer[4]).tolist() == [4, 5, 6, 7]
    assert [(e.key, e.value) for e in merged.graph.initializer[1].metadata_props][0] == ("source", "test")


def test_a_pruned_model_failing_the_checker_is_refused_unless_the_original_fails_too():
    source = _matmuls()
    model = from_proto(source)
    onnx.checker.check_model(source, full_check=True)  # the original passes
    assert _check_pruned(model, source, counted=False) is None
    skeleton = _check_pruned(model, source, counted=True)
    assert skeleton == to_proto(model, tensors="skeleton")
    # w2 loses rows that h still has: MatMul's inner sizes disagree (2 x n @ n-1 x 4)
    edit.write_initializer(model.graph.initializers["w2"], np.ones((BIG // 4 - 1, 4), np.float32))
    with pytest.raises(PruningError, match="pruned model fails the ONNX checker .*mm2.*nothing was written"):
        _check_pruned(model, source, counted=False)
    failing = onnx.ModelProto()
    failing.CopyFrom(source)
    failing.graph.node[2].op_type = "NoSuchOp"  # the original fails the checker too: nothing to compare with
    assert _check_pruned(model, failing, counted=False) is None


def _analysed(name: str, options: Options):
    analyzed = analyze(prepare(load(build(name)), options), options)
    return analyzed, decide(score(analyzed, options), options).decision.removed


#: zoo models whose surgery at ratio 0.5 edits nodes: depthwise Conv groups (mobilenetv2), Split sizes
#: (yolo_neck, opzoo_b), Gather indices as new constants (shufflenetv2_gather); vgg_reshape edits none
EDITING = {"mobilenetv2": True, "yolo_neck": True, "opzoo_b": True, "shufflenetv2_gather": True, "vgg_reshape": False}


@pytest.mark.parametrize("name", sorted(EDITING))
def test_surgery_names_every_node_it_edits_and_the_copy_from_the_skeleton_is_to_protos(name):
    analyzed, removed = _analysed(name, Options(ratio=0.5, validate=False, count_macs=False))
    model, index = analyzed.prepared.model, analyzed.analysis.index
    assert index.skeleton is not None and index.model is model
    indexed = list(index.skeleton.graph.node)
    _, edited = removal_edits(model, analyzed.analysis, removed)
    pruned = to_proto(model, tensors="none")
    assert len(pruned.graph.node) == len(indexed)  # surgery adds and removes no node
    differing = {new.name for new, old in zip(pruned.graph.node, indexed) if new != old}
    assert bool(differing) == EDITING[name]
    assert differing <= edited  # a node left out of ``edited`` would reach the checker unedited
    copied = to_proto(model, tensors="none", written=WrittenNodes(index.skeleton.graph.node, edited))
    assert copied.SerializeToString() == pruned.SerializeToString()
    # a node named edited is serialized anew, the same message: over-naming is harmless
    every = {n.name for n in indexed}
    assert to_proto(model, tensors="none", written=WrittenNodes(indexed, every)) == pruned


def test_written_nodes_must_match_the_graph_node_for_node():
    model = from_proto(_matmuls())
    written = to_proto(model, tensors="none").graph.node
    with pytest.raises(ValueError, match="3 nodes written before for a graph of 4 nodes"):
        to_proto(model, tensors="none", written=WrittenNodes(written[:3], set()))
    edit.set_attribute(model.graph.node(3), "axis", 0)  # the Gather, not named edited: its old message is kept
    stale = to_proto(model, tensors="none", written=WrittenNodes(written, set()))
    assert stale.graph.node[3].attribute[0].i == 1
    fresh = to_proto(model, tensors="none", written=WrittenNodes(written, {"gather"}))
    assert fresh == to_proto(model, tensors="none") and fresh.graph.node[3].attribute[0].i == 0


def test_apply_copies_the_skeletons_nodes_unless_a_repair_edited_the_graph(monkeypatch):
    seen = []
    real = apply_stage._check_pruned
    monkeypatch.setattr(apply_stage, "_check_pruned",
                        lambda *args: seen.append(args[3]) or real(*args))
    options = Options(ratio=0.5, validate=False, count_macs=False)
    analyzed, removed = _analysed("mobilenetv2", options)
    apply_stage.apply(analyzed, removed, options)
    assert seen[0].protos is analyzed.analysis.index.skeleton.graph.node and len(seen[0].edited) == 17
    # a repair may insert nodes after the analysis: the checker's copy is then serialized in full
    analyzed, removed = _analysed("mobilenetv2", options)
    monkeypatch.setattr(apply_stage, "_repair", lambda analyzed, removed, *rest: (
        SimpleNamespace(compensation=None), analyzed.analysis, removed))
    apply_stage.apply(analyzed, removed, options, compensation=("repaired",))
    assert seen[1] is None


@pytest.mark.parametrize("name", ["mobilenetv2", "yolo_neck"])
def test_the_oracle_copies_the_skeletons_nodes_and_writes_what_it_wrote_before(name, monkeypatch):
    from graphprune import oracle

    options = Options(ratio=0.5, validate=True, count_macs=False)
    analyzed, removed = _analysed(name, options)
    model, analysis = analyzed.prepared.model, analyzed.analysis
    serialized = oracle.zeroed(model, analysis, removed)  # every node written anew
    seen = []
    real = oracle.detach
    monkeypatch.setattr(oracle, "detach", lambda m, written=None: seen.append(written) or real(m, written))
    pruned = apply_stage.apply(analyzed, removed, options)
    assert seen[0].protos is analysis.index.skeleton.graph.node and not seen[0].edited
    reference = pruned.oracle_reference
    assert reference.proto.SerializeToString() == serialized.proto.SerializeToString()
    assert sorted(reference.arrays) == sorted(serialized.arrays)
    assert [(f[0], f[1], f[2].tolist()) for f in reference.fills] == [(f[0], f[1], f[2].tolist()) for f in serialized.fills]
