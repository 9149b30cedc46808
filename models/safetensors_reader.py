"""Read a ``.safetensors`` file with numpy alone (no ``safetensors`` or ``torch`` package).

The format: an 8-byte little-endian unsigned header length ``n``, then ``n`` bytes of JSON that map
every tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the
first byte after the header; an optional ``"__metadata__"`` entry holds strings), then the raw
little-endian tensor bytes in C order. The reader checks every offset against the buffer and the
byte count against dtype x shape, so a truncated or hostile file fails with a message instead of
reading past its end.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np

DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_MAX_HEADER_BYTES = 100 * 2**20


class SafetensorsError(ValueError):
    """The bytes are not a well-formed safetensors file (or hold a dtype numpy cannot represent)."""


def read_header(data: bytes | memoryview) -> tuple[dict[str, dict], int]:
    """The tensor entries of the JSON header (metadata left out) and where the tensor bytes start."""
    if len(data) < 8:
        raise SafetensorsError(f"{len(data)} bytes: too short for a safetensors header length")
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    if length > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise SafetensorsError(f"header length {length} exceeds the file ({len(data)} bytes)")
    try:
        header = json.loads(bytes(data[8:8 + length]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"the header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsError("the header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + length


def read_safetensors(data: bytes | memoryview) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file held in memory, in header order (read-only views of ``data``)."""
    header, start = read_header(data)
    body = memoryview(data)[start:]
    return {name: _tensor(name, entry, body) for name, entry in header.items()}


def _tensor(name: str, entry: dict, body: memoryview) -> np.ndarray:
    try:
        dtype, shape, (begin, end) = DTYPES[entry["dtype"]], tuple(entry["shape"]), entry["data_offsets"]
    except KeyError as exc:
        raise SafetensorsError(f"tensor {name!r}: unsupported dtype or missing field ({exc})") from exc
    except (TypeError, ValueError) as exc:
        raise SafetensorsError(f"tensor {name!r}: malformed entry {entry!r}") from exc
    if not 0 <= begin <= end <= len(body):
        raise SafetensorsError(f"tensor {name!r}: data offsets [{begin}, {end}] outside the "
                               f"{len(body)} data bytes")
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise SafetensorsError(f"tensor {name!r}: {end - begin} bytes for shape {list(shape)} of "
                               f"{entry['dtype']}")
    return np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
