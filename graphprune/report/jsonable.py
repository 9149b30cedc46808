"""Turn report sections (result objects, dataclasses, numpy values) into plain JSON data."""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

import numpy as np


def to_jsonable(obj):
    """Plain dicts/lists/str/int/float/bool/None; objects with ``to_dict()`` use it; inf/nan become strings."""
    return _convert(obj, 0)


def _convert(obj, depth: int):
    if depth > 64:
        raise ValueError("report section nested more than 64 levels deep")
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, np.generic):
        return _convert(obj.item(), depth + 1)
    if isinstance(obj, np.ndarray):
        return _convert(obj.tolist(), depth + 1)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _convert(obj.to_dict(), depth + 1)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _convert(dataclasses.asdict(obj), depth + 1)
    if isinstance(obj, Mapping):
        return {str(k): _convert(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_convert(v, depth + 1) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)
