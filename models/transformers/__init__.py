"""Reference transformer exports built with onnx.helper + numpy (no ML framework).

    from models.transformers import TRANSFORMERS, STYLES, build_transformer
    model = build_transformer("llama", style="torchscript", batch="batch", sequence="sequence")

Each builder writes one architecture in the shape an exporter gives it (``STYLES[name]``:
``torchscript``, ``dynamo``, or ``ort`` for onnxruntime's fused ops), with every weight drawn
from one seeded ``numpy.random.default_rng``. Weights are named after their module path, so a
reference implementation can read them by name; MatMul weights are stored [in, out], Gemm
weights [out, in].
"""
from models.transformers import attention23, bert, fused, gpt2, llama, vit, whisper  # noqa: F401  (registering)
from models.transformers.registry import SIZES, STYLES, TRANSFORMERS, build_transformer

__all__ = ["SIZES", "STYLES", "TRANSFORMERS", "build_transformer"]
