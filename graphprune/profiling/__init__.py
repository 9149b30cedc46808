"""Profiling: parameters, MACs and activation memory per node and op type, and ORT latency.

    from graphprune.profiling import profile
    p = profile("model.onnx", compare="slim.onnx", bench=True, threads=1, runs=20)
    print("\\n".join(p.summary_lines())); p.mac_ratio, p.speedup

Names are imported on first use, so importing the package stays cheap.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "LatencyStats": ".bench",
    "measure_latency": ".bench",
    "NodeProfile": ".counts",
    "count_parameters": ".counts",
    "mac_rule": ".macs",
    "node_macs": ".macs",
    "supported_ops": ".macs",
    "ModelProfile": ".model_profile",
    "OpTypeProfile": ".model_profile",
    "profile": ".model_profile",
    "TensorInfo": ".tensors",
    "tensor_infos": ".shapes",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
