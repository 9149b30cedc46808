"""Running one node's rule: what the node says about its channels."""
from __future__ import annotations

import logging

from ..errors import PruningError
from ..graph.index import GraphIndex
from ..rules.base import RuleContext, RuleRegistry, RuleResult
from ..rules.shapevalue import ShapeValues

log = logging.getLogger(__name__)


def evaluate_rule(rules: RuleRegistry, index: GraphIndex, node, values: ShapeValues | None = None) -> RuleResult | None:
    """The rule's result for ``node`` (None: no rule for its op and opset, or the rule failed)."""
    entry = rules.entry(node.domain or "", node.op_type, index.opset(node.domain or ""))
    if entry is None:
        return None
    try:
        result = entry.fn(RuleContext(index, node, values if values is not None else ShapeValues(index)))
    except Exception:  # noqa: BLE001 - a failing rule explains nothing (analysis makes it a barrier)
        log.debug("rule for %s failed", node.name, exc_info=True)
        return None
    if result.view and not entry.views:
        raise PruningError(f"internal error: the {node.op_type} rule marks a view but is not registered "
                            "with views=True (folding would not ask it)")
    return result
