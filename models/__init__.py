"""Reference models for graphprune's tests and benchmarks, built without an ML framework.

``models.zoo`` holds the CNN architectures (``ZOO``, ``build``), ``models.transformers`` the
transformer exports (``TRANSFORMERS``, ``build_transformer``; TorchScript, dynamo and
onnxruntime-fused forms), ``models.builder`` the small graph-building helper they use,
``models.make_demo`` writes ``models/demo.onnx``.
"""
