"""The concrete shape and element type of a tensor, and its size in bytes (no I/O, no runtime)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    elem_type: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * element_size(self.elem_type)


def element_size(elem_type: int) -> int:
    """Bytes per element (sub-byte types round up to 1; unknown types count 4)."""
    try:
        return max(1, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        return 4
