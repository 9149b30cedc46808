"""Everything a model carries survives ``graphprune prune`` and ``graphprune fold`` (via the CLI).

Producer name/version, IR version, opset imports, model and graph doc strings, domain, model
version, metadata_props, model-local functions, input/output names, types, symbolic dims and doc
strings, names and doc strings of nodes, doc strings of sliced initializers; intermediate
value_info entries follow the pruned channel counts.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from tests.helpers import robust as rm
from tests.helpers.robust import run_cli, save


def _rich_model() -> onnx.ModelProto:
    """stem with a BatchNormalization after c1, c4, then a model-local function ``local.Twice`` -> y."""
    nodes, inits = rm.stem()
    nodes.insert(1, h.make_node("BatchNormalization", ["a1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["a1n"],
                                name="bn1", epsilon=1e-5))
    nodes[2].input[0] = "a1n"
    nodes += [rm.conv("r2", "w4", "a4", "c4"), h.make_node("Twice", ["a4"], ["y"], name="twice", domain="local")]
    inits += [rm.weight("w4", 4, 8, 3, 3), nh.from_array(np.linspace(0.5, 1.5, 8, dtype=np.float32), "bn_scale"),
              rm.weight("bn_bias", 8), rm.weight("bn_mean", 8),
              nh.from_array(np.linspace(0.5, 2.0, 8, dtype=np.float32), "bn_var")]
    twice = h.make_function("local", "Twice", ["x"], ["z"], [h.make_node("Add", ["x", "x"], ["z"])],
                            [h.make_opsetid("", 17)])
    model = rm.make(nodes, [rm.image(batch="N")], [rm.image("y", 4, batch="N")], inits,
                    opsets=(("", 17), ("local", 1), ("ai.onnx.ml", 3)))
    model.functions.append(twice)
    model.producer_name, model.producer_version = "exporter", "9.9.1"
    model.domain, model.model_version = "org.example.vision", 7
    model.doc_string, model.graph.doc_string, model.graph.name = "model doc", "graph doc", "net"
    h.set_model_props(model, {"author": "someone", "license": "MIT"})
    model.graph.input[0].doc_string = "image, NCHW"
    model.graph.output[0].doc_string = "feature map"
    model.graph.value_info.extend([h.make_tensor_value_info("r1", T.FLOAT, ["N", 8, 8, 8]),
                                   h.make_tensor_value_info("a4", T.FLOAT, ["N", 4, 8, 8])])
    for node in model.graph.node:
        node.doc_string = f"doc of {node.name}"
    for t in model.graph.initializer:
        t.doc_string = f"weight {t.name}"
    return model


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The original and the outputs of prune (ratio 0.5) and fold, each through the CLI."""
    folder = tmp_path_factory.mktemp("preservation")
    original = _rich_model()
    onnx.checker.check_model(original, full_check=True)
    path = save(original, folder / "model.onnx")
    out = {}

    class Capture:  # capsys is function-scoped; the CLI only needs somewhere to print
        def readouterr(self):
            return type("R", (), {"out": "", "err": ""})()

    for command, extra in (("prune", ["--ratio", "0.5"]), ("fold", [])):
        code, _, _ = run_cli(Capture(), command, path, "-o", folder / f"{command}.onnx", *extra)
        assert code == 0, command
        out[command] = onnx.load(str(folder / f"{command}.onnx"))
    return original, out


COMMANDS = ["prune", "fold"]


@pytest.mark.parametrize("command", COMMANDS)
def test_model_level_fields_survive(results, command):
    original, out = results
    model = out[command]
    onnx.checker.check_model(model, full_check=True)
    for field in ("producer_name", "producer_version", "domain", "model_version", "doc_string", "ir_version"):
        assert getattr(model, field) == getattr(original, field), field
    assert [(o.domain, o.version) for o in model.opset_import] == [(o.domain, o.version) for o in original.opset_import]
    assert {p.key: p.value for p in model.metadata_props} == {"author": "someone", "license": "MIT"}
    assert [f.SerializeToString() for f in model.functions] == [f.SerializeToString() for f in original.functions]


@pytest.mark.parametrize("command", COMMANDS)
def test_graph_interface_survives(results, command):
    original, out = results
    model = out[command]
    assert (model.graph.name, model.graph.doc_string) == ("net", "graph doc")
    assert [i.SerializeToString() for i in model.graph.input if i.name == "x"] == \
        [original.graph.input[0].SerializeToString()]  # name, type, symbolic batch, doc string
    assert [o.SerializeToString() for o in model.graph.output] == [o.SerializeToString() for o in original.graph.output]


@pytest.mark.parametrize("command,gone", [("prune", {"bn1"}), ("fold", {"bn1"})])  # both fold BN
def test_node_names_and_docs_survive(results, command, gone):
    original, out = results
    before = {n.name: n.doc_string for n in original.graph.node}
    after = {n.name: n.doc_string for n in out[command].graph.node}
    assert set(after) == set(before) - gone
    assert all(after[name] == before[name] for name in after)


@pytest.mark.parametrize("command", COMMANDS)
def test_initializer_docs_survive_slicing(results, command):
    _, out = results
    docs = {t.name: t.doc_string for t in out[command].graph.initializer}
    for name in ("w1", "w2", "w4"):
        assert docs[name] == f"weight {name}"


def test_pruned_value_info_follows_the_channels(results):
    _, out = results
    pruned = out["prune"]
    shapes = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in pruned.graph.value_info}
    w1 = next(t for t in pruned.graph.initializer if t.name == "w1")
    assert w1.dims[0] == 4
    assert shapes["r1"] == ["N", 4, 8, 8]  # the pruned group's activation
    assert shapes["a4"] == ["N", 4, 8, 8]  # the output's channels are never pruned
