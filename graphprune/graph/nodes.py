"""Reading nodes of the editable graph by name: inputs, outputs, attributes.

Analysis and rules speak of tensors by name (spaces are ``(tensor name, axis)``), so these
helpers give an ``onnx_ir.Node``'s inputs and outputs as names (``""`` for an omitted optional
input) and its attributes as the plain values ``onnx.helper.get_attribute_value`` would give
(strings as bytes, repeated fields as lists).
"""
from __future__ import annotations

from collections import UserDict

import onnx
import onnx_ir as ir
from onnx_ir import serde

_PLAIN = {
    ir.AttributeType.INT: int,
    ir.AttributeType.FLOAT: float,
    ir.AttributeType.INTS: list,
    ir.AttributeType.FLOATS: list,
}


def inputs(node: ir.Node) -> list[str]:
    return [v.name if v is not None else "" for v in node.inputs]


def outputs(node: ir.Node) -> list[str]:
    return [v.name for v in node.outputs]


def input_name(node: ir.Node, i: int) -> str:
    v = node.inputs[i] if i < len(node.inputs) else None
    return v.name if v is not None else ""


def output_name(node: ir.Node, i: int) -> str:
    return node.outputs[i].name if i < len(node.outputs) else ""


def get_attr(node: ir.Node | onnx.NodeProto, name: str, default=None):
    """The attribute's value as ``onnx.helper.get_attribute_value`` gives it, or ``default``
    (of an editable-graph node or of a NodeProto)."""
    if isinstance(node, onnx.NodeProto):
        for attr in node.attribute:
            if attr.name == name:
                return onnx.helper.get_attribute_value(attr)
        return default
    attributes = node.attributes
    # the plain dict under onnx-ir's Attributes: UserDict.get looks a missing name up by catching a KeyError
    attr = (attributes.data if isinstance(attributes, UserDict) else attributes).get(name)
    if attr is None or attr.is_ref():
        return default
    convert = _PLAIN.get(attr.type)
    if convert is not None:
        return convert(attr.value)
    if attr.type == ir.AttributeType.STRING:
        return attr.value.encode()
    if attr.type == ir.AttributeType.STRINGS:
        return [s.encode() for s in attr.value]
    return onnx.helper.get_attribute_value(serde.serialize_attribute(attr))


_SUBGRAPH_TYPES = (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)


def has_subgraph(node: ir.Node) -> bool:
    attributes = node.attributes
    # the plain dict under onnx-ir's Attributes (a UserDict, whose values() looks every key up again)
    values = attributes.data.values() if isinstance(attributes, UserDict) else attributes.values()
    return any(a.type in _SUBGRAPH_TYPES for a in values)


def is_default_domain(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx")
