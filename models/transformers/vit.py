"""ViT (torchvision's ``VisionTransformer`` layout) in the TorchScript and dynamo forms.

Input ``input`` [batch, 3, H, W]; output ``logits`` [batch, classes]. Patch embedding Conv
(kernel = stride = patch), flattened and transposed to tokens, a learned ``class_token``
broadcast to the batch (its size read from Shape at run time) and concatenated in front, the
``pos_embedding`` added; pre-norm blocks with ``nn.MultiheadAttention`` (ONE fused in-projection
to 3E, chunked into Q/K/V), erf-GELU MLP; the class token's final state goes to the head.

torchscript (torch's MHA code path): tokens transposed to [T, B, E], in-projection Reshaped to
[T, -1, 3, E] and Split, heads as [T, B*H, D] then [B, H, T, D] (Reshape with -1), the output
projection a Gemm on [T*B, E]; the class token expanded through the exporter's
ConstantOfShape/Equal/Where rewrite of ``expand(n, -1, -1)``. dynamo: in-projection on
[B, T, E] chunked by three Slices, constant head reshapes, MatMul output projection.

``norm``: ``layernorm`` (default), ``batchnorm`` (BatchNorm1d over channels between two
Transposes, as ViTs trained with BN) or ``none``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper

from models.transformers.blocks import Scores, attention, gemm, linear, mlp, pre_norm_block, token_norm
from models.transformers.common import HeadsConfig, STYLES, TransformerBuilder
from models.transformers.registry import register

CLASS_TOKEN_STD, POSITION_STD = 1.0, 0.5


@dataclass(frozen=True)
class VitConfig(HeadsConfig):
    image: int
    patch: int
    layers: int
    mlp: int
    classes: int

    @property
    def tokens(self) -> int:
        """Patches plus the class token."""
        return (self.image // self.patch) ** 2 + 1


VIT = {"small": VitConfig(image=32, patch=8, hidden=32, heads=4, layers=2, mlp=64, classes=10),
       "base": VitConfig(image=224, patch=16, hidden=768, heads=12, layers=12, mlp=3072, classes=1000)}


def patch_tokens(b: TransformerBuilder, cfg: VitConfig, image: str) -> str:
    """conv_proj (kernel = stride = patch), Reshape [B, E, patches], Transpose to [B, patches, E]."""
    with b.scope("conv_proj"):
        weight = b.param("weight", (cfg.hidden, 3, cfg.patch, cfg.patch), (3 * cfg.patch ** 2) ** -0.5)
        conv = b.node("Conv", [image, weight, b.bias("bias", cfg.hidden)], kernel_shape=[cfg.patch] * 2,
                      strides=[cfg.patch] * 2, pads=[0] * 4)
    flat = b.reshape_to(conv, [b.batch_of(conv), cfg.hidden, cfg.tokens - 1])
    return b.transpose(flat, [0, 2, 1])


def class_token_batch(b: TransformerBuilder, cfg: VitConfig, token: str, tokens: str) -> str:
    """``class_token.expand(n, -1, -1)`` with ``n`` the batch size of ``tokens``."""
    batch = b.batch_of(tokens)
    if not b.torchscript or isinstance(batch, int):
        return b.node("Expand", [token, b.shape_tensor([batch, 1, cfg.hidden])])
    sizes = b.concat([b.run_size(batch), b.ints([-1]), b.ints([-1])], axis=0)
    ones = b.node("ConstantOfShape", [b.ints([3])], value=helper.make_tensor("value", TensorProto.INT64, [1], [1]))
    minus_ones = b.mul(ones, b.ints([-1]))
    target = b.node("Where", [b.node("Equal", [sizes, minus_ones]), ones, sizes])
    return b.node("Expand", [token, target])


def mha_torchscript(b: TransformerBuilder, cfg: VitConfig, x: str) -> str:
    """torch's ``multi_head_attention_forward`` (batch_first, need_weights=False) as exported."""
    tokens, heads, dim, hidden = cfg.tokens, cfg.heads, cfg.head_dim, cfg.hidden
    seq_first = b.transpose(x, [1, 0, 2])
    with b.scope("in_proj"):
        fused = linear(b, seq_first, hidden, 3 * hidden)
    fused = b.reshape(fused, [tokens, -1, 3, hidden])
    chunks = [b.squeeze(part, [2]) for part in b.split(fused, [1, 1, 1], axis=2)]
    q, k, v = (b.reshape(b.transpose(b.reshape(c, [tokens, -1, dim]), [1, 0, 2]), [-1, heads, tokens, dim])
               for c in chunks)
    context = attention(b, q, k, v, dim, Scores(scale="sqrt_both"))
    flat = b.reshape(b.transpose(context, [2, 0, 1, 3]), [-1, hidden])
    with b.scope("out_proj"):
        projected = gemm(b, flat, hidden, hidden)
    return b.transpose(b.reshape(projected, [tokens, -1, hidden]), [1, 0, 2])


def mha_dynamo(b: TransformerBuilder, cfg: VitConfig, x: str) -> str:
    """The same attention with the in-projection on [B, T, E] chunked by Slices."""
    heads, dim, hidden = cfg.heads, cfg.head_dim, cfg.hidden
    with b.scope("in_proj"):
        fused = linear(b, x, hidden, 3 * hidden)
    q, k, v = (b.transpose(b.reshape_to(b.slice(fused, i * hidden, (i + 1) * hidden, axis=2),
                                        [b.batch_of(x), cfg.tokens, heads, dim]), [0, 2, 1, 3])
               for i in range(3))
    context = b.transpose(attention(b, q, k, v, dim, Scores(scale="sqrt_both")), [0, 2, 1, 3])
    with b.scope("out_proj"):
        return linear(b, b.reshape_to(context, [b.batch_of(context), cfg.tokens, hidden]), hidden, hidden)


def encoder_block(b: TransformerBuilder, cfg: VitConfig, h: str, norm: str) -> str:
    attend = mha_torchscript if b.torchscript else mha_dynamo
    return pre_norm_block(b, h, lambda x: token_norm(b, x, cfg.hidden, norm), lambda x: attend(b, cfg, x),
                          lambda x: mlp(b, x, cfg.hidden, cfg.mlp, b.gelu, ("0", "3")),
                          ("ln_1", "self_attention", "ln_2", "mlp"))


def vit_encoder(b: TransformerBuilder, cfg: VitConfig, h: str, norm: str) -> str:
    with b.scope("encoder"):
        h = b.add(h, b.param("pos_embedding", (1, cfg.tokens, cfg.hidden), POSITION_STD))
        for index in range(cfg.layers):
            with b.scopes("layers", f"encoder_layer_{index}"):
                h = encoder_block(b, cfg, h, norm)
        with b.scope("ln"):
            return token_norm(b, h, cfg.hidden, norm)


def vit_model(b: TransformerBuilder, size: str, norm: str) -> None:
    cfg = VIT[size]
    image = b.float_input("input", [3, cfg.image, cfg.image])
    class_token = b.param("class_token", (1, 1, cfg.hidden), CLASS_TOKEN_STD)
    patches = patch_tokens(b, cfg, image)
    h = b.concat([class_token_batch(b, cfg, class_token, patches), patches], axis=1)
    h = vit_encoder(b, cfg, h, norm)
    first = b.node("Gather", [h, b.const(np.int64(0), np.int64)], axis=1)
    with b.scopes("heads", "head"):
        b.graph_output(gemm(b, first, cfg.hidden, cfg.classes), "logits", [b.batch, cfg.classes])


@register("vit", STYLES, sizes=("small", "base"), norm="layernorm")
@register("vit_bn", STYLES, sizes=("small", "base"), norm="batchnorm")
@register("vit_nonorm", STYLES, sizes=("small", "base"), norm="none")
def vit(b: TransformerBuilder, size: str, norm: str = "layernorm") -> None:
    """ViT: patch Conv, class token broadcast to the batch, fused-in-projection MHA, GELU MLP."""
    vit_model(b, size, norm)
