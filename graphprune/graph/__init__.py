"""The one editable graph (an ``onnx_ir.Model``), its conversion to and from protobuf, and the
read-only name-keyed index that analysis uses."""
from .index import GraphIndex, Use  # noqa: F401
from .model import from_proto, to_proto  # noqa: F401
from .nodes import get_attr, input_name, inputs, output_name, outputs  # noqa: F401
from .proto import (add_initializer, copy_fields, copy_without_weights, fresh_name,  # noqa: F401
                    remove_initializers, subgraph_reads, write_tensor)
from .shapes import Shape, infer_shapes  # noqa: F401
