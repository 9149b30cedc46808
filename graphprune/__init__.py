"""graphprune: a structured-pruning compiler for ONNX models."""
__version__ = "0.1.0"
