"""Reference models for graphprune's tests and benchmarks, built without an ML framework.

``models.zoo`` holds the architectures (``ZOO``, ``build``), ``models.builder`` the small
graph-building helper they use, ``models.make_demo`` writes ``models/demo.onnx``.
"""
