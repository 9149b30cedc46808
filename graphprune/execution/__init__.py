"""Services that run onnxruntime for the stages: latency probes, candidate evaluations."""
