"""The length of a tensor's raw data, read from serialized sizes (no copy of the bytes)."""
from __future__ import annotations

import onnx
import pytest

from graphprune.input_checks import raw_data_length


@pytest.mark.parametrize("length", [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 3_000_001])
def test_raw_data_length_equals_len_at_every_varint_boundary(length):
    tensor = onnx.TensorProto(name="w", data_type=onnx.TensorProto.UINT8, dims=[length], doc_string="d")
    tensor.external_data.add(key="note", value="x" * 300)  # other fields of any size are subtracted
    tensor.raw_data = bytes(length)
    assert raw_data_length(tensor) == len(tensor.raw_data) == length
