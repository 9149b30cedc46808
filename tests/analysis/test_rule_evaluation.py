"""analysis/builder.py's _evaluate_rules: every node gets its op's rule (looked up once per op type)
or a reason naming the node: no rule for the op, none for this opset, or the rule failed."""
from __future__ import annotations

from onnx import helper

from graphprune.analysis.builder import _evaluate_rules
from graphprune.rules.base import RuleRegistry, RuleResult
from graphprune.rules.shapevalue import ShapeValues
from tests.helpers.rule_graphs import graph, tensor


def _failing(ctx):
    raise ValueError("boom")


def test_each_node_gets_its_rule_or_a_reason_naming_it():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu1"),
             helper.make_node("Neg", ["a"], ["b"], name="neg"),
             helper.make_node("Relu", ["b"], ["c"], name="relu2"),
             helper.make_node("Swish", ["c"], ["d"], name="swish", domain="my.ops"),
             helper.make_node("Abs", ["d"], ["e"], name="abs1"),
             helper.make_node("Abs", ["e"], ["y"], name="abs2")]
    index = graph(nodes, [tensor("x", [2, 3])], [tensor("y", [2, 3])], opset=17)
    rules = RuleRegistry()
    rules.register("Relu", since=30)(lambda ctx: RuleResult())  # known, but not at opset 17
    rules.register("Neg")(_failing)
    made = []
    rules.register("Abs")(lambda ctx: made.append(ctx.name) or RuleResult(view=True))
    infos = _evaluate_rules(index, ShapeValues(index), rules)
    assert list(infos) == ["relu1", "neg", "relu2", "swish", "abs1", "abs2"]
    assert {n: (i.op, i.reason) for n, i in infos.items() if i.result is None} == {
        "relu1": ("Relu", "Relu node relu1: no rule for this opset at opset 17"),
        "neg": ("Neg", "Neg node neg: rule failed (boom)"),
        "relu2": ("Relu", "Relu node relu2: no rule for this opset at opset 17"),
        "swish": ("my.ops.Swish", "my.ops.Swish node swish: no rule for this op")}
    assert made == ["abs1", "abs2"] and all(infos[n].result.view and infos[n].op == "Abs" for n in made)
