"""Acceptance of issue 10: real models with dynamic height and width validate with no extra options.

Every model of ../shared/models and the onnx package's light models, made dynamic by
:func:`tests.helpers.dynamic.with_dynamic_height_width`, is validated against itself
and against its folded copy through the validation API, without ``input_shapes``. The sizes
graphprune chooses are checked against what is known about each model independently:

* models that only run at the size they were exported at (a flatten into a fixed Gemm, a
  channel shuffle Reshape with spatial constants, anchor priors, Resize targets) must get
  exactly that size (the size their original file declares);
* models that run at any size get the first size of the image ladder, 224;
* mnist-cntk flattens 16 x 4 x 4 features: conv (same padding), 2x2 pool, conv, 3x3 pool
  stride 3 give 4 x 4 for inputs 24 to 29 (floor((floor(s/2) - 3) / 3) + 1 = 4);
* image-classifier32 first resizes its input to 30 x 30 (node Resize_8, sizes from Concat_5),
  so it runs at any size; the Resize hint names 30 x 30.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphprune.api import fold  # a ModelProto in, FoldResult.model a ModelProto
from graphprune.validation import resolve_input_shapes, validate
from tests.helpers.paths import load_named_model
from tests.helpers.dynamic import declared_hw, with_dynamic_height_width

#: models that run at one size only (their exported one), by file name
ONE_SIZE = {"fastestdet.onnx", "road-segmentation-adas-nhwc.onnx", "ultraface-slim-320.onnx",
            "light_bvlc_alexnet.onnx", "light_inception_v1.onnx", "light_inception_v2.onnx",
            "light_resnet50.onnx", "light_shufflenet.onnx", "light_vgg19.onnx", "light_zfnet512.onnx"}
#: models that run at every size the ladder tries first
ANY_SIZE = {"light_densenet121.onnx", "light_squeezenet.onnx", "yolox-nano.onnx"}
SHARED = ["fastestdet.onnx", "image-classifier32.onnx", "mnist-cntk.onnx", "road-segmentation-adas-nhwc.onnx",
          "ultraface-slim-320.onnx", "yolox-nano.onnx"]
LIGHT = ["light_bvlc_alexnet.onnx", "light_densenet121.onnx", "light_inception_v1.onnx", "light_inception_v2.onnx",
         "light_resnet50.onnx", "light_shufflenet.onnx", "light_squeezenet.onnx", "light_vgg19.onnx",
         "light_zfnet512.onnx"]
#: over 10 s each on 2 cores: big weights run at 224 (vgg19, zfnet, inception v2), 512x896 (road
#: segmentation), or the fold's symbolic shape inference on dynamic dims (yolox, 13 s)
SLOW = {"light_vgg19.onnx", "light_zfnet512.onnx", "light_inception_v2.onnx", "road-segmentation-adas-nhwc.onnx",
        "yolox-nano.onnx"}


def _expected_ok(name: str, original: onnx.ModelProto, hw: tuple[int, int]) -> bool:
    if name in ONE_SIZE:
        return hw == declared_hw(original)
    if name in ANY_SIZE:
        return hw == (224, 224)
    if name == "mnist-cntk.onnx":
        return hw[0] == hw[1] and 24 <= hw[0] <= 29
    if name == "image-classifier32.onnx":
        return hw == (30, 30)
    raise AssertionError(f"no expectation for {name}")


def _symbolic_dims(model: onnx.ModelProto) -> list:
    stored = {t.name for t in model.graph.initializer}
    return [[d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in model.graph.input if vi.name not in stored]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SHARED + LIGHT])
def test_dynamic_copy_validates_against_itself_and_its_folded_copy(name):
    original = load_named_model(name)
    dynamic = with_dynamic_height_width(original)
    resolved = resolve_input_shapes(dynamic)
    chosen = dict(resolved.chosen)
    assert resolved.source == "chosen" and set(chosen) == {"H", "W"}
    assert _expected_ok(name, original, (chosen["H"], chosen["W"])), (name, resolved.summary())

    itself = validate(dynamic, dynamic, samples=1, progress=False)
    assert itself.passed and itself.inputs == resolved
    assert all(o.max_abs == 0.0 for o in itself.outputs)
    assert itself.inputs.summary().startswith(f"input shape of the checks: {next(iter(resolved.shapes))}: ")

    folded = fold(dynamic, inplace=False).model
    assert _symbolic_dims(folded) == _symbolic_dims(dynamic)     # the output model stays dynamic
    against_fold = validate(dynamic, folded, samples=1, progress=False)
    assert against_fold.passed, "\n".join(against_fold.summary_lines())
    assert against_fold.inputs.shapes == resolved.shapes
    assert all(np.isfinite(o.max_rel) and o.max_rel <= 1e-4 for o in against_fold.outputs)
    assert _symbolic_dims(dynamic)[0].count("H") == 1            # validation did not fix the dims
