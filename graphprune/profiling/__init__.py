"""Profiling: parameters, MACs and activation memory per node and op type, and ORT latency.

    from graphprune.profiling import profile
    p = profile("model.onnx", compare="slim.onnx", bench=True, threads=1, runs=20)
    print("\\n".join(p.summary_lines())); p.mac_ratio, p.speedup
"""
from .bench import LatencyStats, measure_latency
from .counts import NodeProfile
from .macs import mac_rule, node_macs, supported_ops
from .model_profile import ModelProfile, OpTypeProfile, profile
from .shapes import TensorInfo, tensor_infos

__all__ = [
    "profile", "ModelProfile", "OpTypeProfile", "NodeProfile", "LatencyStats", "measure_latency", "mac_rule",
    "node_macs", "supported_ops", "TensorInfo", "tensor_infos",
]
