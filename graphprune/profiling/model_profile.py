"""``profile``: parameters, MACs, activation memory and (optionally) latency of a model.

With ``compare=`` a second model is profiled with the same input shapes and, under ``bench``,
timed in the same interleaved run, so MAC ratio and measured speedup sit side by side.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from ..io import external_files_of, model_byte_size
from ..validation.feeds import make_feeds
from ..io.read import ModelLike, as_model, model_label
from .bench import LatencyStats, check_bench_options, measure_latency
from .counts import NodeProfile, node_profiles, peak_activation_bytes
from .shapes import tensor_infos

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpTypeProfile:
    """Totals of one op type."""

    op_type: str
    nodes: int
    params: int
    macs: int
    activation_bytes: int
    uncounted: int  # nodes of this type whose MACs are unknown

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ModelProfile:
    """Everything :func:`profile` measured. Ratios are candidate / this model (``compare``)."""

    name: str
    file_size: int
    input_shapes: dict[str, tuple[int, ...]]
    nodes: tuple[NodeProfile, ...]
    peak_activation_bytes: int
    latency: LatencyStats | None = None
    compare: "ModelProfile | None" = None
    by_op_type: dict[str, OpTypeProfile] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "by_op_type", _by_op_type(self.nodes))

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def total_macs(self) -> int:
        return sum(n.macs or 0 for n in self.nodes)

    @property
    def activation_bytes(self) -> int:
        return sum(n.activation_bytes for n in self.nodes)

    @property
    def uncounted(self) -> dict[str, int]:
        """Op types whose MACs are not counted -> number of such nodes."""
        return {op: p.uncounted for op, p in self.by_op_type.items() if p.uncounted}

    @property
    def mac_ratio(self) -> float | None:
        return _ratio(self.compare.total_macs, self.total_macs) if self.compare else None

    @property
    def param_ratio(self) -> float | None:
        return _ratio(self.compare.total_params, self.total_params) if self.compare else None

    @property
    def speedup(self) -> float | None:
        """This model's median latency / the compared model's (>1: the compared model is faster)."""
        if not (self.compare and self.latency and self.compare.latency):
            return None
        return _ratio(self.latency.median_ms, self.compare.latency.median_ms)

    def node(self, name: str) -> NodeProfile:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self, per_node: bool = True) -> dict:
        out = {
            "name": self.name, "file_size": self.file_size,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "total_params": self.total_params, "total_macs": self.total_macs,
            "activation_bytes": self.activation_bytes, "peak_activation_bytes": self.peak_activation_bytes,
            "uncounted": self.uncounted,
            "by_op_type": [p.to_dict() for p in self.by_op_type.values()],
            "latency": self.latency.to_dict() if self.latency else None,
        }
        if per_node:
            out["nodes"] = [n.to_dict() for n in self.nodes]
        if self.compare is not None:
            out["compare"] = self.compare.to_dict(per_node)
            out["mac_ratio"], out["param_ratio"], out["speedup"] = self.mac_ratio, self.param_ratio, self.speedup
        return out

    def summary_lines(self, per_node: bool = False) -> list[str]:
        from .table import profile_lines

        return profile_lines(self, per_node=per_node)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _by_op_type(nodes) -> dict[str, OpTypeProfile]:
    acc: dict[str, list[int]] = {}
    for n in nodes:
        a = acc.setdefault(n.op_type, [0, 0, 0, 0, 0])
        a[0] += 1
        a[1] += n.params
        a[2] += n.macs or 0
        a[3] += n.activation_bytes
        a[4] += n.macs is None
    ordered = sorted(acc.items(), key=lambda kv: (-kv[1][2], -kv[1][1], kv[0]))
    return {op: OpTypeProfile(op, *vals) for op, vals in ordered}


def _file_size(model: ModelLike, proto: onnx.ModelProto) -> int:
    """Bytes on disk (with an external-data file beside it) or of the serialized proto."""
    if isinstance(model, onnx.ModelProto):
        return model_byte_size(proto)
    path = Path(model)
    return path.stat().st_size + sum(f.stat().st_size for f in external_files_of(path) if f.is_file())


def _static_profile(model: ModelLike, proto: onnx.ModelProto, input_shapes, label: str) -> ModelProfile:
    infos, inputs = tensor_infos(proto, input_shapes)
    return ModelProfile(label, _file_size(model, proto), inputs, tuple(node_profiles(proto, infos)),
                        peak_activation_bytes(proto, infos))


def profile(model: ModelLike, *, input_shapes: Mapping | None = None, bench: bool = False, threads: int = 1,
            runs: int = 20, warmup: int = 3, compare: ModelLike | None = None, progress: bool = True) -> ModelProfile:
    """Profile ``model`` (proto or path); see :class:`ModelProfile`. ``bench`` adds ORT latency."""
    if bench:
        check_bench_options(threads, runs, warmup)
    proto = as_model(model)
    base = _static_profile(model, proto, input_shapes, model_label(model, "model"))
    other = None
    if compare is not None:
        cproto = as_model(compare)
        other = _static_profile(compare, cproto, base.input_shapes, model_label(compare, "compared model"))
    if not bench:
        return replace(base, compare=other)
    feed = make_feeds(proto, 1, seed=0, input_shapes=base.input_shapes)[0]
    models = [proto] if other is None else [proto, cproto]
    labels = [base.name] if other is None else [base.name, other.name]
    stats = measure_latency(models, feed, labels=labels, threads=threads, runs=runs, warmup=warmup, progress=progress)
    if other is not None:
        other = replace(other, latency=stats[1])
    return replace(base, latency=stats[0], compare=other)
