"""Reference models for graphprune's tests and benchmarks, built without an ML framework.

``models.zoo`` holds the CNN architectures (``ZOO``, ``build``), ``models.transformers`` the
transformer exports (``TRANSFORMERS``, ``build_transformer``; TorchScript, dynamo and
onnxruntime-fused forms), ``models.builder`` the small graph-building helper they use,
``models.make_demo`` writes ``models/demo.onnx``. ``models.minilm`` builds the real trained
all-MiniLM-L6-v2 sentence encoder from the safetensors of a PyPI package (read by
``models.safetensors_reader``), ``models.sentences`` gives it real English calibration and
evaluation sentences from ``pydoc_data.topics``.
"""
