"""Where the tests find the repository, third-party models and onnx's light models."""
from __future__ import annotations

from pathlib import Path

import onnx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_MODELS = ROOT.parent / "shared" / "models"
LIGHT_MODELS = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def shared_model(name: str) -> Path:
    """Path of a model in ../shared/models; fails the test (naming the file) when it is absent."""
    path = SHARED_MODELS / name
    if not path.is_file():
        pytest.fail(f"third-party model {path} not found (expected ../shared/models/{name}: clone with ../shared "
                    "beside the repository)", pytrace=False)
    return path


def light_models() -> list[Path]:
    return sorted(LIGHT_MODELS.glob("*.onnx"))


def load_named_model(name: str) -> onnx.ModelProto:
    """A light model of onnx (``light_*.onnx``) or a model of ../shared/models, by file name; fails the
    test (naming the file) when it is absent."""
    if name.startswith("light_"):
        path = LIGHT_MODELS / name
        if not path.is_file():
            pytest.fail(f"onnx light model {path} not found (onnx package without backend test data)", pytrace=False)
        return onnx.load(str(path))
    return onnx.load(str(shared_model(name)))

