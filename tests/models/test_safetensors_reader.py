"""The numpy safetensors reader on files written here byte by byte (no safetensors package)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from models.safetensors_reader import SafetensorsError, read_safetensors

_CODES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("float16"): "F16", np.dtype("uint8"): "U8"}


def write_safetensors(tensors: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    """The safetensors bytes of ``tensors`` (little-endian, C order, in the given order)."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def test_round_trip_of_several_dtypes():
    rng = np.random.default_rng(0)
    tensors = {"w": rng.standard_normal((3, 5)).astype(np.float32), "ids": np.arange(7, dtype=np.int64),
               "half": rng.standard_normal(4).astype(np.float16), "empty": np.zeros((0, 2), np.uint8)}
    read = read_safetensors(write_safetensors(tensors, {"format": "pt"}))
    assert list(read) == list(tensors)
    for name, array in tensors.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        np.testing.assert_array_equal(read[name], array)


def test_header_bytes_are_parsed_as_specified():
    header = b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  '  # 54 bytes + 2 spaces of padding
    blob = struct.pack("<Q", 56) + header \
        + struct.pack("<2f", 1.5, -2.0)
    np.testing.assert_array_equal(read_safetensors(blob)["x"], [1.5, -2.0])


@pytest.mark.parametrize("blob, message", [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 1000) + b"{}", "exceeds the file"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
])
def test_malformed_headers_are_refused(blob, message):
    with pytest.raises(SafetensorsError, match=message):
        read_safetensors(blob)


@pytest.mark.parametrize("entry, message", [
    ({"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}, "unsupported dtype"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 400]}, "outside"),
    ({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, "8 bytes for shape"),
    ({"dtype": "F32", "shape": [2]}, "missing field"),
])
def test_bad_entries_are_refused(entry, message):
    text = json.dumps({"t": entry}).encode()
    with pytest.raises(SafetensorsError, match=message):
        read_safetensors(struct.pack("<Q", len(text)) + text + bytes(8))
