"""Rules: one function per op type (and opset range), registered in one registry.

Importing this package registers every rule module.
"""
from . import attention, contrib, conv, elementwise, layout, linear, reduction, reshape, selection  # noqa: F401
from .base import (CHANNEL, CONSUMER, DEFAULT_RULES, PRODUCER, Choice, FixUp, Link, RuleContext, RuleRegistry,
                   RuleResult, Space, lookup, register, registered_ops)

__all__ = ["CHANNEL", "CONSUMER", "DEFAULT_RULES", "PRODUCER", "Choice", "FixUp", "Link", "RuleContext",
           "RuleRegistry", "RuleResult", "Space", "lookup", "register", "registered_ops"]
