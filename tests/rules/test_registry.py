"""The rules registry is an object handed to analysis: a rule is added to a copy, never to the
default, and only the analysis given that copy sees it."""
from __future__ import annotations

from graphprune.analysis.builder import analyze
from graphprune.graph import GraphIndex
from graphprune.graph.model import to_proto
from graphprune.pipeline import Options, load, prepare
from graphprune.pipeline import analyze as analyze_stage
from graphprune.rules import DEFAULT_RULES, RuleRegistry
from graphprune.rules.elementwise import unary_rule
from graphprune.surgery.apply import apply_removal
from tests.helpers import robust as rm
from tests.helpers.oracle import group_of, kept_count
from tests.helpers.planning import decide, normalized


def test_lookup_follows_domains_and_opset_ranges():
    assert DEFAULT_RULES.lookup("", "Relu", 17) is unary_rule
    assert DEFAULT_RULES.lookup("ai.onnx", "Relu", 17) is unary_rule   # ai.onnx is the default domain
    assert DEFAULT_RULES.lookup("my.ops", "Relu", 17) is None
    rules = RuleRegistry()
    rules.register("Twice", domain="local", since=13, until=17)(unary_rule)
    assert [rules.lookup("local", "Twice", v) for v in (12, 13, 17, 18)] == [None, unary_rule, unary_rule, None]
    assert rules.ops() == [("local", "Twice")]


def test_a_copy_is_independent_of_the_default():
    before = DEFAULT_RULES.ops()
    rules = DEFAULT_RULES.copy()
    assert rules.ops() == before and rules.lookup("", "Conv", 17) is DEFAULT_RULES.lookup("", "Conv", 17)
    rules.register("Swish", domain="my.ops")(unary_rule)
    rules.register("Relu", since=99)(unary_rule)  # a later entry for an existing op: only in the copy
    assert DEFAULT_RULES.ops() == before and DEFAULT_RULES.lookup("my.ops", "Swish", 1) is None
    assert set(rules.ops()) - set(before) == {("my.ops", "Swish")}
    again = rules.copy()
    again.register("Other", domain="my.ops")(unary_rule)
    assert rules.lookup("my.ops", "Other", 1) is None and again.lookup("my.ops", "Swish", 1) is unary_rule


def test_an_added_rule_reaches_only_the_analysis_given_the_copy():
    """my.ops.Swish blocks the stem's last group with the default rules; with a copy that knows it
    as elementwise, the group prunes through it (and the default still does not know it)."""
    model = rm.custom_domain()
    graph = normalized(model)
    blocked = group_of(analyze(GraphIndex(graph)), "w2", 0)
    assert blocked.blocked
    assert "my.ops.Swish node custom_swish: no rule for this op" in {b.reason for b in blocked.barriers}
    rules = DEFAULT_RULES.copy()
    rules.register("Swish", domain="my.ops")(unary_rule)
    analysis = analyze(GraphIndex(graph), rules=rules)
    known = group_of(analysis, "w2", 0)
    assert known.prunable and known.n_slots == rm.STEM_CHANNELS and group_of(analysis, "w4", 1) is known
    assert DEFAULT_RULES.lookup("my.ops", "Swish", 1) is None
    assert group_of(analyze(GraphIndex(graph)), "w2", 0).blocked   # the default analysis is unchanged
    apply_removal(graph, analysis, decide(analysis, ratio=0.5).removed)
    pruned = to_proto(graph)
    assert kept_count(pruned, "w2", 0) == kept_count(pruned, "w4", 1) == 4
    assert [n.domain for n in pruned.graph.node if n.name == "custom_swish"] == ["my.ops"]


def test_the_analyze_stage_takes_a_registry():
    rules = DEFAULT_RULES.copy()
    rules.register("Swish", domain="my.ops")(unary_rule)
    options = Options(keep_bn=True)
    prepared = prepare(load(rm.custom_domain()), options)
    with_rule = analyze_stage(prepared, options, rules=rules).analysis
    without = analyze_stage(prepared, options).analysis
    assert group_of(with_rule, "w2", 0).prunable and group_of(without, "w2", 0).blocked
    assert group_of(with_rule, "w1", 0).n_slots == group_of(without, "w1", 0).n_slots == rm.STEM_CHANNELS
