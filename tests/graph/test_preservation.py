"""Everything a model carries survives ``graphprune prune`` and ``graphprune fold`` (via the CLI).

Producer name/version, IR version, opset imports, model and graph doc strings, domain, model
version, metadata_props, model-local functions, input/output names, types, symbolic dims and doc
strings, names and doc strings of nodes, doc strings of sliced initializers; intermediate
value_info entries follow the pruned channel counts.
"""
from __future__ import annotations

import onnx
import pytest

from tests.helpers import robust as rm
from tests.helpers.robust import run_cli, save


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The original and the outputs of prune (ratio 0.5) and fold, each through the CLI."""
    folder = tmp_path_factory.mktemp("preservation")
    original = rm.rich_model()
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
