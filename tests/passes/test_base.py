"""passes/base.py: a pass returns (model, modified, notes); sequences run in order, a fixpoint
repeats until a round changes nothing; checks run before a pass and after a modifying one."""
from __future__ import annotations

import logging

import onnx
import pytest

from graphprune.errors import InvalidModelError
from graphprune.graph.model import from_proto, to_proto
from graphprune.passes.base import FixpointPass, Pass, PassResult, PassSequence
from graphprune.passes.cleanup import CleanupPass
from graphprune.input_checks import check_structure
from tests.helpers.fold import GraphBuilder, assert_fold_exact, op_counts


def structure_check(model) -> None:
    """The structure check of input models, on the editable graph (raises InvalidModelError)."""
    check_structure(to_proto(model, tensors="skeleton"), "pass result")


class RemoveOneIdentity(Pass):
    """Bypasses the first Identity node, if any (one per run: a fixpoint needs several rounds)."""

    name = "one-identity"

    def __init__(self, log: list | None = None):
        self.log = log if log is not None else []

    def run(self, model) -> PassResult:
        self.log.append(self.name)
        node = next((n for n in model.graph if n.op_type == "Identity"), None)
        if node is None:
            return PassResult(model, False)
        node.outputs[0].replace_all_uses_with(node.inputs[0])
        model.graph.remove(node, safe=True)
        return PassResult(model, True, [f"bypassed {node.name}"])


class Record(Pass):
    def __init__(self, name: str, log: list, modified: bool = False):
        self.name, self.log, self.modified = name, log, modified

    def run(self, model) -> PassResult:
        self.log.append(self.name)
        return PassResult(model, self.modified, [self.name] if self.modified else [])


class DropRelu(Pass):
    """A broken pass: removes the Relu without rewiring its readers."""

    name = "drop-relu"
    checks_after = (structure_check,)

    def run(self, model) -> PassResult:
        relu = next(n for n in model.graph if n.op_type == "Relu")
        model.graph.remove(relu, safe=False)
        return PassResult(model, True)


def _identity_chain(count: int) -> onnx.ModelProto:
    b = GraphBuilder()
    h = b.op("Relu", [b.input([2, 3])])
    for _ in range(count):
        h = b.op("Identity", [h])
    return b.model(b.op("Tanh", [h]))


def test_sequence_runs_in_order_and_collects_notes():
    log: list = []
    graph = from_proto(_identity_chain(1))
    result = PassSequence([Record("a", log), Record("b", log, modified=True), Record("c", log)])(graph)
    assert log == ["a", "b", "c"] and result.modified and result.model is graph
    assert result.notes == ["b"] and [p.modified for p in result.parts] == [False, True, False]
    quiet = PassSequence([Record("a", log), Record("c", log)])(graph)
    assert not quiet.modified and quiet.notes == []


def test_fixpoint_repeats_until_a_round_changes_nothing():
    model = _identity_chain(3)
    graph = from_proto(model)
    log: list = []
    result = FixpointPass([RemoveOneIdentity(log), Record("after", log)])(graph)
    assert result.modified and len(result.parts) == 4 and not result.parts[-1].modified
    assert log == ["one-identity", "after"] * 4
    assert [n for n in result.notes if n.startswith("bypassed")] == [f"bypassed {n.name}" for n in
                                                                      model.graph.node if n.op_type == "Identity"]
    cleaned = to_proto(graph)
    assert op_counts(cleaned) == {"Relu": 1, "Tanh": 1}
    assert_fold_exact(model, cleaned, seeds=(0,), atol=0.0)
    again = FixpointPass([RemoveOneIdentity(), CleanupPass()])(graph)
    assert not again.modified and len(again.parts) == 1 and to_proto(graph).SerializeToString() == \
        cleaned.SerializeToString()


def test_fixpoint_stops_after_max_rounds_and_says_so(caplog):
    log: list = []
    with caplog.at_level(logging.WARNING, logger="graphprune.passes.base"):
        result = FixpointPass([Record("restless", log, modified=True)], max_rounds=3)(from_proto(_identity_chain(0)))
    assert log == ["restless"] * 3 and len(result.parts) == 3 and result.modified
    assert "restless still changed the graph after 3 rounds; stopping" in caplog.text


def test_checks_run_before_and_after_a_modifying_pass():
    seen: list = []

    class Checked(Record):
        checks_before = (lambda model: seen.append("before"),)
        checks_after = (lambda model: seen.append("after"),)

    graph = from_proto(_identity_chain(0))
    Checked("quiet", [])(graph)
    assert seen == ["before"]                      # nothing changed: nothing to check after
    Checked("busy", [], modified=True)(graph)
    assert seen == ["before", "before", "after"]


def test_a_failing_check_after_stops_a_broken_pass():
    graph = from_proto(_identity_chain(1))
    with pytest.raises(InvalidModelError, match="reads 't1', which no node produces"):
        DropRelu()(graph)


def test_a_failing_check_before_stops_the_pass_from_running():
    model = _identity_chain(1)
    model.graph.node[1].input[0] = "ghost"  # the Identity reads a tensor nobody defines
    log: list = []

    class Guarded(Record):
        checks_before = (structure_check,)

    with pytest.raises(InvalidModelError, match="reads 'ghost', which no node produces"):
        Guarded("guarded", log)(from_proto(model))
    assert log == []
