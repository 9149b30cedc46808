"""Issue 10 acceptance through the command line: real models with their dynamic dims left dynamic
inspect, fold, prune at 0.25 and validate with no extra flags, and the prune summary's parameter
counts are the ones ``graphprune profile`` prints for the same files."""
from __future__ import annotations

import json
import re

import onnx
import pytest

from graphprune.cli import main
from tests.helpers.paths import load_named_model
from tests.helpers.dynamic import with_dynamic_height_width

MODELS = ["mnist-cntk.onnx", "ultraface-slim-320.onnx", "fastestdet.onnx", "image-classifier32.onnx",
          "light_squeezenet.onnx", "light_shufflenet.onnx", "light_densenet121.onnx"]
#: the rest of ../shared/models and of the light models: each runs its checks at a large size (224
#: for the light ones, 512x896 for road segmentation) or has many nodes (yolox)
SLOW = ["yolox-nano.onnx", "road-segmentation-adas-nhwc.onnx", "light_bvlc_alexnet.onnx", "light_inception_v1.onnx",
        "light_inception_v2.onnx", "light_resnet50.onnx", "light_vgg19.onnx", "light_zfnet512.onnx"]


def _image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The first real graph input (old IR versions list initializers as inputs too)."""
    inits = {t.name for t in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in inits)


def _run(capsys, *argv) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _parameters(text: str, label: str) -> list[int]:
    match = re.search(rf"^{label}\s*:?\s*([\d,]+)(?:\s*->\s*([\d,]+))?", text, re.M)
    assert match, text
    return [int(g.replace(",", "")) for g in match.groups() if g]


@pytest.mark.parametrize("name", MODELS + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_dynamic_model_goes_through_every_command_without_flags(name, tmp_path, capsys):
    model = with_dynamic_height_width(load_named_model(name))
    dims = [d.dim_param for d in _image_input(model).type.tensor_type.shape.dim if d.dim_param]
    assert dims, "the copy must have dynamic dims"
    path, folded, pruned = tmp_path / "dynamic.onnx", tmp_path / "folded.onnx", tmp_path / "pruned.onnx"
    onnx.save(model, path)
    inspected = _run(capsys, "inspect", str(path))
    assert re.search(r"groups: \d+ \(\d+ prunable", inspected)
    _run(capsys, "fold", str(path), "-o", str(folded))
    summary = _run(capsys, "prune", str(path), "-o", str(pruned), "--ratio", "0.25")
    assert "exactness: pruned model equals its oracle" in summary
    assert "input shape of the checks:" in summary
    _run(capsys, "validate", str(path), str(folded))
    before, after = _parameters(summary, "parameters")
    assert json.loads(_run(capsys, "profile", str(path), "--json"))["total_params"] == before
    assert json.loads(_run(capsys, "profile", str(pruned), "--json"))["total_params"] == after
    assert after < before
    for written in (folded, pruned):  # the outputs keep the dims dynamic
        kept = _image_input(onnx.load(str(written))).type.tensor_type.shape.dim
        assert [d.dim_param for d in kept if d.dim_param] == dims
