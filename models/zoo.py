"""Reference CNN architectures built with onnx.helper + numpy (no ML framework).

Each builder returns an ``onnx.ModelProto`` with the real topology of the architecture it is
named after; ``size="small"`` narrows widths and inputs so a run takes milliseconds,
``size="full"`` gives the real widths and input size (the parameter count of the original).

    from models.zoo import ZOO, build
    model = build("resnet50", opset=13, batch="N", keep_bn=True, size="small")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import onnx
from onnx import TensorProto

from models.builder import GraphBuilder

SIZES = ("small", "full")
RESIDUAL_GAIN = 0.2  # He gain of the last conv of a residual branch (see GraphBuilder.conv_norm)
ZOO: dict[str, Callable[..., onnx.ModelProto]] = {}


def register(name: str, **fixed):
    """Register ``arch(b, size, **kw)`` as ``ZOO[name](*, opset, seed, batch, keep_bn, size, **kw)``."""
    def wrap(arch):
        def builder(*, opset: int = 17, seed: int = 0, batch=1, keep_bn: bool = True,
                    size: str = "small", **kw) -> onnx.ModelProto:
            if size not in SIZES:
                raise ValueError(f"{name}: size must be one of {SIZES}, got {size!r}")
            b = GraphBuilder(name, opset=opset, seed=seed, batch=batch, keep_bn=keep_bn)
            arch(b, size, **{**fixed, **kw})
            return b.finish(doc=f"graphprune reference model {name} ({size}), seed {seed}")
        builder.__name__, builder.__qualname__, builder.__doc__ = name, name, arch.__doc__
        ZOO[name] = builder
        return arch
    return wrap


def build(name: str, *, opset: int = 17, seed: int = 0, batch=1, keep_bn: bool = True,
          size: str = "small", **kw) -> onnx.ModelProto:
    """Build zoo model ``name`` (see ``ZOO`` for the names)."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}")
    return ZOO[name](opset=opset, seed=seed, batch=batch, keep_bn=keep_bn, size=size, **kw)


# ---------------------------------------------------------------------- shared pieces
def _classifier(b: GraphBuilder, x: str, channels: int, classes: int, dropout: float | None = None) -> str:
    """GlobalAveragePool -> Flatten -> [Dropout] -> Gemm, as the graph output ``logits``."""
    with b.scope("classifier"):
        y = b.flatten(b.unary("GlobalAveragePool", x))
        if dropout is not None:
            y = b.dropout(y, dropout)
        return b.output(b.gemm(y, channels, classes), "logits")


@dataclass(frozen=True)
class SqueezeExcite:
    squeeze: int
    act: str
    gate: str


def _squeeze_excite(b: GraphBuilder, x: str, channels: int, se: SqueezeExcite) -> str:
    """x * gate(conv(act(conv(GlobalAveragePool(x))))), the gate shaped [N, C, 1, 1]."""
    with b.scope("se"):
        s = b.unary("GlobalAveragePool", x)
        s = b.act(b.conv(s, channels, se.squeeze, 1, bias=True), se.act)
        s = b.act(b.conv(s, se.squeeze, channels, 1, bias=True, gain=1.0), se.gate)
        return b.mul(x, s)


def _mbconv(b: GraphBuilder, x: str, cin: int, hidden: int, cout: int, *, k: int = 3, stride: int = 1,
            act: str = "relu6", se: SqueezeExcite | None = None) -> str:
    """Inverted residual: [expand 1x1] -> depthwise kxk -> [SE] -> project 1x1 (+ x)."""
    y = x if hidden == cin else b.conv_norm(x, cin, hidden, 1, act=act)
    y = b.conv_norm(y, hidden, hidden, k, stride, groups=hidden, act=act)
    if se is not None:
        y = _squeeze_excite(b, y, hidden, se)
    if stride == 1 and cin == cout:
        return b.add(x, b.conv_norm(y, hidden, cout, 1, gain=RESIDUAL_GAIN))
    return b.conv_norm(y, hidden, cout, 1)


def _shortcut(b: GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    return x if stride == 1 and cin == cout else b.conv_norm(x, cin, cout, 1, stride)


# ---------------------------------------------------------------------- ResNet / ResNeXt
def _basic_block(b: GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    y = b.conv_norm(x, cin, cout, 3, stride, act="relu")
    y = b.conv_norm(y, cout, cout, 3, gain=RESIDUAL_GAIN)
    return b.unary("Relu", b.add(y, _shortcut(b, x, cin, cout, stride)))


def _bottleneck(b: GraphBuilder, x: str, cin: int, width: int, cout: int, stride: int, groups: int = 1) -> str:
    y = b.conv_norm(x, cin, width, 1, act="relu")
    y = b.conv_norm(y, width, width, 3, stride, groups=groups, act="relu")
    y = b.conv_norm(y, width, cout, 1, gain=RESIDUAL_GAIN)
    return b.unary("Relu", b.add(y, _shortcut(b, x, cin, cout, stride)))


def _resnet_stem(b: GraphBuilder, x: str, channels: int) -> str:
    with b.scope("stem"):
        return b.maxpool(b.conv_norm(x, 3, channels, 7, 2, act="relu"), 3, 2, 1)


RESNET = {"small": dict(stem=8, planes=(8, 16, 32, 64), hw=64, classes=10),
          "full": dict(stem=64, planes=(64, 128, 256, 512), hw=224, classes=1000)}


@register("resnet18")
def resnet18(b: GraphBuilder, size: str) -> None:
    """ResNet-18: 7x7 stem, four stages of two basic blocks, 1x1 projection shortcuts."""
    spec = RESNET[size]
    x = _resnet_stem(b, b.input("input", [3, spec["hw"], spec["hw"]]), spec["stem"])
    cin = spec["stem"]
    for stage, planes in enumerate(spec["planes"]):
        for block in range(2):
            with b.scope(f"layer{stage + 1}.{block}"):
                x = _basic_block(b, x, cin, planes, 2 if block == 0 and stage > 0 else 1)
            cin = planes
    _classifier(b, x, cin, spec["classes"])


def _bottleneck_net(b: GraphBuilder, spec: dict, widths, groups: int) -> None:
    """ResNet-50 layout [3, 4, 6, 3] of bottlenecks (stride on the 3x3, as in v1.5)."""
    x = _resnet_stem(b, b.input("input", [3, spec["hw"], spec["hw"]]), spec["stem"])
    cin = spec["stem"]
    for stage, (planes, width, repeats) in enumerate(zip(spec["planes"], widths, (3, 4, 6, 3))):
        for block in range(repeats):
            with b.scope(f"layer{stage + 1}.{block}"):
                x = _bottleneck(b, x, cin, width, planes * 4, 2 if block == 0 and stage > 0 else 1, groups)
            cin = planes * 4
    _classifier(b, x, cin, spec["classes"])


@register("resnet50")
def resnet50(b: GraphBuilder, size: str) -> None:
    """ResNet-50: bottleneck blocks (1x1 -> 3x3 -> 1x1, expansion 4); full = 25.6 M parameters."""
    spec = RESNET[size]
    _bottleneck_net(b, spec, spec["planes"], groups=1)


RESNEXT_GROUPS = {"small": 4, "full": 32}


@register("resnext")
def resnext(b: GraphBuilder, size: str) -> None:
    """ResNeXt-50: bottlenecks whose 3x3 is a grouped conv (small 4 groups, full 32x4d)."""
    spec, groups = RESNET[size], RESNEXT_GROUPS[size]
    _bottleneck_net(b, spec, [2 * planes for planes in spec["planes"]], groups=groups)


# ---------------------------------------------------------------------- MobileNet / EfficientNet
# (expand ratio, out channels, repeats, first stride) of the seven inverted-residual stages
MOBILENETV2 = {
    "small": dict(stem=8, last=128, hw=64, classes=10,
                  cfg=[(1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 3, 2), (6, 24, 4, 2),
                       (6, 32, 3, 1), (6, 48, 3, 2), (6, 64, 1, 1)]),
    "full": dict(stem=32, last=1280, hw=224, classes=1000,
                 cfg=[(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]),
}


@register("mobilenetv2")
def mobilenetv2(b: GraphBuilder, size: str) -> None:
    """MobileNetV2: inverted residuals (expand, depthwise, linear project), Relu6 as Clip(0, 6)."""
    spec = MOBILENETV2[size]
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, spec["stem"], 3, 2, act="relu6")
    cin = spec["stem"]
    for stage, (expand, cout, repeats, stride) in enumerate(spec["cfg"]):
        for block in range(repeats):
            with b.scope(f"features.{stage}.{block}"):
                x = _mbconv(b, x, cin, cin * expand, cout, stride=stride if block == 0 else 1)
            cin = cout
    with b.scope("head"):
        x = b.conv_norm(x, cin, spec["last"], 1, act="relu6")
    _classifier(b, x, spec["last"], spec["classes"], dropout=0.2)


def _divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor`` without losing more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# (kernel, expanded, out, squeeze-excite, activation, stride) of MobileNetV3-Small
MOBILENETV3_CFG = [(3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
                   (5, 96, 40, True, "hardswish", 2), (5, 240, 40, True, "hardswish", 1),
                   (5, 240, 40, True, "hardswish", 1), (5, 120, 48, True, "hardswish", 1),
                   (5, 144, 48, True, "hardswish", 1), (5, 288, 96, True, "hardswish", 2),
                   (5, 576, 96, True, "hardswish", 1), (5, 576, 96, True, "hardswish", 1)]
MOBILENETV3 = {"small": dict(width=0.5, divisor=4, last=288, hidden=128, hw=64, classes=10),
               "full": dict(width=1.0, divisor=8, last=576, hidden=1024, hw=224, classes=1000)}


@register("mobilenetv3")
def mobilenetv3(b: GraphBuilder, size: str) -> None:
    """MobileNetV3-Small: HardSwish, squeeze-excitation x * HardSigmoid(...)[N, C, 1, 1]."""
    spec = MOBILENETV3[size]

    def scaled(channels: int) -> int:
        return _divisible(channels * spec["width"], spec["divisor"])

    cin = scaled(16)
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, cin, 3, 2, act="hardswish")
    for index, (k, hidden, cout, use_se, act, stride) in enumerate(MOBILENETV3_CFG):
        hidden, cout = scaled(hidden), scaled(cout)
        se = SqueezeExcite(_divisible(hidden / 4, spec["divisor"]), "relu", "hardsigmoid") if use_se else None
        with b.scope(f"features.{index + 1}"):
            x = _mbconv(b, x, cin, hidden, cout, k=k, stride=stride, act=act, se=se)
        cin = cout
    with b.scope("head"):
        x = b.conv_norm(x, cin, spec["last"], 1, act="hardswish")
        x = b.hardswish(b.gemm(b.flatten(b.unary("GlobalAveragePool", x)), spec["last"], spec["hidden"], gain=2.0))
        x = b.dropout(x, 0.2)
        b.output(b.gemm(x, spec["hidden"], spec["classes"]), "logits")


# (expand ratio, kernel, stride, repeats) of EfficientNet-B0's seven stages
EFFICIENTNET_CFG = [(1, 3, 1, 1), (6, 3, 2, 2), (6, 5, 2, 2), (6, 3, 2, 3), (6, 5, 1, 3), (6, 5, 2, 4), (6, 3, 1, 1)]
EFFICIENTNET = {"small": dict(stem=16, widths=(8, 16, 24, 32, 48, 64, 96), last=128, hw=64, classes=10),
                "full": dict(stem=32, widths=(16, 24, 40, 80, 112, 192, 320), last=1280, hw=224, classes=1000)}


@register("efficientnet")
def efficientnet(b: GraphBuilder, size: str) -> None:
    """EfficientNet-B0: MBConv with squeeze-excitation, SiLU written as x * Sigmoid(x)."""
    spec = EFFICIENTNET[size]
    cin = spec["stem"]
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, cin, 3, 2, act="silu")
    for stage, ((expand, k, stride, repeats), cout) in enumerate(zip(EFFICIENTNET_CFG, spec["widths"])):
        for block in range(repeats):
            se = SqueezeExcite(max(1, cin // 4), "silu", "sigmoid")
            with b.scope(f"features.{stage + 1}.{block}"):
                x = _mbconv(b, x, cin, cin * expand, cout, k=k, stride=stride if block == 0 else 1,
                            act="silu", se=se)
            cin = cout
    with b.scope("head"):
        x = b.conv_norm(x, cin, spec["last"], 1, act="silu")
    _classifier(b, x, spec["last"], spec["classes"], dropout=0.2)


# ---------------------------------------------------------------------- DenseNet
DENSENET = {"small": dict(init=16, growth=8, blocks=(3, 6, 12, 8), hw=64, classes=10),
            "full": dict(init=64, growth=32, blocks=(6, 12, 24, 16), hw=224, classes=1000)}
DENSENET_BN_SIZE = 4


def _dense_layer(b: GraphBuilder, features: list[str], cin: int, growth: int) -> str:
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 over the Concat of every earlier feature map."""
    x = b.concat(features) if len(features) > 1 else features[0]
    bottleneck = DENSENET_BN_SIZE * growth
    y = b.conv(b.norm_act(x, cin), cin, bottleneck, 1, bias=not b.keep_bn)
    return b.conv(b.norm_act(y, bottleneck), bottleneck, growth, 3, bias=not b.keep_bn)


def _transition(b: GraphBuilder, x: str, cin: int) -> str:
    y = b.conv(b.norm_act(x, cin), cin, cin // 2, 1, bias=not b.keep_bn)
    return b.avgpool(y, 2, 2)


@register("densenet")
def densenet(b: GraphBuilder, size: str) -> None:
    """DenseNet-121 layout: dense blocks of Concat chains, transitions halve channels."""
    spec = DENSENET[size]
    with b.scope("stem"):
        x = b.maxpool(b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, spec["init"], 7, 2,
                                  act="relu"), 3, 2, 1)
    cin = spec["init"]
    for index, layers in enumerate(spec["blocks"]):
        features = [x]
        for layer in range(layers):
            with b.scope(f"denseblock{index + 1}.layer{layer + 1}"):
                features.append(_dense_layer(b, features, cin + layer * spec["growth"], spec["growth"]))
        x, cin = b.concat(features), cin + layers * spec["growth"]
        if index < len(spec["blocks"]) - 1:
            with b.scope(f"transition{index + 1}"):
                x, cin = _transition(b, x, cin), cin // 2
    _classifier(b, b.norm_act(x, cin), cin, spec["classes"])


# ---------------------------------------------------------------------- ShuffleNetV2
SHUFFLENET = {"small": dict(widths=(16, 24, 48, 96, 128), hw=64, classes=10),
              "full": dict(widths=(24, 116, 232, 464, 1024), hw=224, classes=1000)}
SHUFFLENET_REPEATS = (4, 8, 4)


def _channel_halves(b: GraphBuilder, x: str, channels: int, split: str) -> list[str]:
    half = channels // 2
    if split == "split":
        return b.split(x, [half, half])
    if split == "slice":
        return [b.slice(x, 0, half), b.slice(x, half, channels)]
    if split == "gather":
        return [b.node("Gather", [x, b.ints(range(lo, lo + half))], axis=1) for lo in (0, half)]
    raise ValueError(f"unknown channel split {split!r} (split, slice or gather)")


def _channel_shuffle(b: GraphBuilder, x: str, channels: int, hw: int) -> str:
    """Reshape [N, 2, C/2, H, W] -> Transpose(0, 2, 1, 3, 4) -> Reshape [N, C, H, W]."""
    y = b.reshape(x, [-1, 2, channels // 2, hw, hw])
    return b.reshape(b.transpose(y, [0, 2, 1, 3, 4]), [-1, channels, hw, hw])


def _shuffle_branch(b: GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    y = b.conv_norm(x, cin, cout, 1, act="relu")
    y = b.conv_norm(y, cout, cout, 3, stride, groups=cout)
    return b.conv_norm(y, cout, cout, 1, act="relu")


def _shuffle_unit(b: GraphBuilder, x: str, cin: int, cout: int, stride: int, hw: int, split: str) -> str:
    half = cout // 2
    if stride == 1:
        left, right = _channel_halves(b, x, cin, split)
        y = b.concat([left, _shuffle_branch(b, right, half, half, 1)])
    else:
        left = b.conv_norm(b.conv_norm(x, cin, cin, 3, 2, groups=cin), cin, half, 1, act="relu")
        y = b.concat([left, _shuffle_branch(b, x, cin, half, 2)])
    return _channel_shuffle(b, y, cout, hw)


def _shufflenetv2(b: GraphBuilder, size: str, split: str = "split") -> None:
    """ShuffleNetV2: channel split, branch, Concat, channel shuffle; head mean over H, W."""
    spec = SHUFFLENET[size]
    widths, hw = spec["widths"], spec["hw"] // 4
    with b.scope("stem"):
        x = b.maxpool(b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, widths[0], 3, 2,
                                  act="relu"), 3, 2, 1)
    cin = widths[0]
    for stage, (cout, repeats) in enumerate(zip(widths[1:4], SHUFFLENET_REPEATS)):
        hw //= 2
        for unit in range(repeats):
            with b.scope(f"stage{stage + 2}.{unit}"):
                x = _shuffle_unit(b, x, cin, cout, 2 if unit == 0 else 1, hw, split)
            cin = cout
    with b.scope("head"):
        x = b.conv_norm(x, cin, widths[4], 1, act="relu")
        x = b.reduce("ReduceMean", x, [2, 3], keepdims=False)
        b.output(b.gemm(x, widths[4], spec["classes"]), "logits")


register("shufflenetv2", split="split")(_shufflenetv2)
register("shufflenetv2_slice", split="slice")(_shufflenetv2)
register("shufflenetv2_gather", split="gather")(_shufflenetv2)


# ---------------------------------------------------------------------- VGG
VGG = {"small": dict(cfg=(8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64), hw=112, hidden=64, classes=10),
       "full": dict(cfg=(64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
                    hw=224, hidden=4096, classes=1000)}
VGG_POOLED = 7


def _vgg(b: GraphBuilder, size: str, flatten: str = "flatten") -> None:
    """VGG (16-BN full, 11-like small): conv stacks (biased conv before BN, as torchvision
    writes it), C x 7 x 7 flattened into Gemm, Dropout."""
    spec = VGG[size]
    x, cin = b.input("input", [3, spec["hw"], spec["hw"]]), 3
    with b.scope("features"):
        for item in spec["cfg"]:
            if item == "M":
                x = b.maxpool(x, 2, 2)
            else:
                x, cin = b.conv_norm(x, cin, item, 3, act="relu", bias=True), item
    features, hidden = cin * VGG_POOLED * VGG_POOLED, spec["hidden"]
    with b.scope("classifier"):
        x = b.flatten(x) if flatten == "flatten" else b.reshape(x, [0, -1])
        for fin in (features, hidden):
            x = b.dropout(b.unary("Relu", b.gemm(x, fin, hidden, gain=2.0)), 0.5)
        b.output(b.gemm(x, hidden, spec["classes"]), "logits")


register("vgg", flatten="flatten")(_vgg)
register("vgg_reshape", flatten="reshape")(_vgg)


# ---------------------------------------------------------------------- U-Net
UNET = {"small": dict(widths=(8, 16, 32, 64, 128), hw=64, classes=2),
        "full": dict(widths=(64, 128, 256, 512, 1024), hw=256, classes=2)}
UNET_GROUPED_UP = dict(level=1, groups=4)


def _double_conv(b: GraphBuilder, x: str, cin: int, cout: int) -> str:
    return b.conv_norm(b.conv_norm(x, cin, cout, 3, act="relu"), cout, cout, 3, act="relu")


@register("unet")
def unet(b: GraphBuilder, size: str) -> None:
    """U-Net: MaxPool encoder, ConvTranspose 2x2 decoder (one grouped), skip Concat."""
    spec = UNET[size]
    widths = spec["widths"]
    with b.scope("inc"):
        x = _double_conv(b, b.input("input", [3, spec["hw"], spec["hw"]]), 3, widths[0])
    skips = []
    for level, cout in enumerate(widths[1:], start=1):
        skips.append(x)
        with b.scope(f"down{level}"):
            x = _double_conv(b, b.maxpool(x, 2, 2), widths[level - 1], cout)
    for level in reversed(range(len(widths) - 1)):
        cin, cout = widths[level + 1], widths[level]
        groups = UNET_GROUPED_UP["groups"] if level == UNET_GROUPED_UP["level"] else 1
        with b.scope(f"up{len(widths) - 1 - level}"):
            up = b.conv_transpose(x, cin, cout, 2, 2, groups=groups)
            x = _double_conv(b, b.concat([skips[level], up]), 2 * cout, cout)
    with b.scope("outc"):
        b.output(b.conv(x, widths[0], spec["classes"], 1, bias=True, gain=1.0), "logits")


# ---------------------------------------------------------------------- YOLO (v8-style) neck
YOLO = {"small": dict(widths=(8, 16, 32, 64, 128), hw=64), "full": dict(widths=(32, 64, 128, 256, 512), hw=640)}
YOLO_REPEATS = (1, 2, 2, 1)


def _yolo_conv(b: GraphBuilder, x: str, cin: int, cout: int, k: int = 1, stride: int = 1) -> str:
    return b.conv_norm(x, cin, cout, k, stride, act="silu")


def _c2f(b: GraphBuilder, x: str, cin: int, cout: int, repeats: int, shortcut: bool) -> str:
    """C2f: 1x1 conv, Split into two halves, chained bottlenecks, Concat of all, 1x1 conv."""
    hidden = cout // 2
    parts = b.split(_yolo_conv(b, x, cin, 2 * hidden), [hidden, hidden])
    for index in range(repeats):
        with b.scope(f"m.{index}"):
            y = _yolo_conv(b, _yolo_conv(b, parts[-1], hidden, hidden, 3), hidden, hidden, 3)
            parts.append(b.add(parts[-1], y) if shortcut else y)
    return _yolo_conv(b, b.concat(parts), (2 + repeats) * hidden, cout)


def _sppf(b: GraphBuilder, x: str, channels: int) -> str:
    """SPPF: 1x1 conv, three chained MaxPool 5x5 (stride 1), Concat of the four, 1x1 conv."""
    hidden = channels // 2
    pooled = [_yolo_conv(b, x, channels, hidden)]
    for _ in range(3):
        pooled.append(b.maxpool(pooled[-1], 5, 1, 2))
    return _yolo_conv(b, b.concat(pooled), 4 * hidden, channels)


def _yolo_backbone(b: GraphBuilder, spec: dict) -> tuple[str, str, str]:
    w = spec["widths"]
    x = _yolo_conv(b, b.input("images", [3, spec["hw"], spec["hw"]]), 3, w[0], 3, 2)
    x = _yolo_conv(b, x, w[0], w[1], 3, 2)
    features = []
    for stage, repeats in enumerate(YOLO_REPEATS):
        with b.scope(f"backbone{stage}"):
            x = _c2f(b, x, w[stage + 1], w[stage + 1], repeats, shortcut=True)
            features.append(x)
            if stage < 3:
                x = _yolo_conv(b, x, w[stage + 1], w[stage + 2], 3, 2)
    with b.scope("sppf"):
        p5 = _sppf(b, features[3], w[4])
    return features[1], features[2], p5


@register("yolo_neck")
def yolo_neck(b: GraphBuilder, size: str) -> None:
    """YOLOv8-style backbone + PAN neck: C2f, SPPF, Resize x2, Concat; outputs P3, P4, P5."""
    spec = YOLO[size]
    w = spec["widths"]
    p3, p4, p5 = _yolo_backbone(b, spec)
    with b.scope("neck.up4"):
        n4 = _c2f(b, b.concat([b.resize(p5), p4]), w[4] + w[3], w[3], 1, shortcut=False)
    with b.scope("neck.up3"):
        out3 = _c2f(b, b.concat([b.resize(n4), p3]), w[3] + w[2], w[2], 1, shortcut=False)
    with b.scope("neck.down4"):
        out4 = _c2f(b, b.concat([_yolo_conv(b, out3, w[2], w[2], 3, 2), n4]), w[2] + w[3], w[3], 1, False)
    with b.scope("neck.down5"):
        out5 = _c2f(b, b.concat([_yolo_conv(b, out4, w[3], w[3], 3, 2), p5]), w[3] + w[4], w[4], 1, False)
    for name, tensor in (("p3", out3), ("p4", out4), ("p5", out5)):
        b.output(tensor, name)


# ---------------------------------------------------------------------- channels-last (tf2onnx-like)
# stem width, then (out channels, stride) of the depthwise-separable blocks after the NHWC bias block
NHWC = {"small": dict(hw=32, stem=16, blocks=((32, 1),), classes=10),
        "full": dict(hw=224, stem=32, blocks=((64, 1), (128, 2), (256, 2), (256, 2)), classes=1000)}


def _separable(b: GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    x = b.conv_norm(x, cin, cin, 3, stride, groups=cin, act="relu6")
    return b.conv_norm(x, cin, cout, 1, act="relu6")


@register("nhwc")
def nhwc(b: GraphBuilder, size: str) -> None:
    """Channels-last input [N, H, W, C]: Transpose in, a bias Add done in NHWC, Transpose out,
    then the NHWC feature map flattened by Reshape into MatMul with a constant weight."""
    spec = NHWC[size]
    cin, hw = spec["stem"], spec["hw"] // 4
    x = b.transpose(b.input("input", [spec["hw"], spec["hw"], 3]), [0, 3, 1, 2])
    x = b.conv_norm(x, 3, cin, 3, 2, act="relu")
    with b.scope("biasadd_nhwc"):
        y = b.transpose(b.conv(x, cin, cin, 3, 2), [0, 2, 3, 1])
        y = b.unary("Relu", b.add(y, b.normal(b.fresh("bias"), (cin,), 0.1)))
        x = b.transpose(y, [0, 3, 1, 2])
    for index, (cout, stride) in enumerate(spec["blocks"]):
        with b.scope(f"separable{index}"):
            x, cin, hw = _separable(b, x, cin, cout, stride), cout, hw // stride
    features = b.output(b.transpose(x, [0, 2, 3, 1]), "features")
    flat = b.reshape(features, [-1, hw * hw * cin])
    b.output(b.matmul(flat, hw * hw * cin, spec["classes"]), "logits")


# ---------------------------------------------------------------------- demo (README's first command)
DEMO = {"small": dict(hw=64, widths=(16, 24, 32, 48), classes=10),
        "full": dict(hw=224, widths=(32, 64, 128, 256), classes=1000)}


@register("demo")
def demo(b: GraphBuilder, size: str) -> None:
    """Small ResNet / MobileNet hybrid classifier: basic blocks, an inverted residual with SE."""
    spec = DEMO[size]
    w = spec["widths"]
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, w[0], 3, 2, act="relu")
    with b.scope("block1"):
        x = _basic_block(b, x, w[0], w[0], 1)
    with b.scope("block2"):
        x = _basic_block(b, x, w[0], w[1], 2)
    with b.scope("block3"):
        se = SqueezeExcite(w[1] // 2, "relu", "hardsigmoid")
        x = _mbconv(b, x, w[1], 4 * w[1], w[2], stride=2, act="relu", se=se)
    with b.scope("block4"):
        x = _basic_block(b, x, w[2], w[3], 2)
    _classifier(b, x, w[3], spec["classes"])


# ---------------------------------------------------------------------- op coverage models
OPZOO = {"small": dict(hw=32, channels=16, classes=10, head_pool=4),
         "full": dict(hw=128, channels=64, classes=1000, head_pool=16)}


def _opzoo_activations(b: GraphBuilder, x: str, c: int) -> str:
    """conv -> op chain, repeated: one chain per family of elementwise ops."""
    chains = [
        lambda y: b.prelu(b.instance_norm(y, c), c),
        lambda y: b.unary("Identity", b.node("LeakyRelu", [y], alpha=0.1)),
        lambda y: b.dropout(b.unary("Elu", y), 0.1),
        lambda y: b.cast(b.cast(b.unary("Selu", y), TensorProto.FLOAT16), TensorProto.FLOAT),
        lambda y: b.unary("Sqrt", b.add(b.unary("Relu", b.unary("Softplus", y)), b.scalar(1.0))),
        lambda y: b.cast(b.cast(b.mish(y), TensorProto.DOUBLE), TensorProto.FLOAT),
        lambda y: b.unary("Tanh", b.unary("Erf", b.gelu(y))),
        lambda y: b.add(b.unary("Sigmoid", y), b.hardsigmoid(y)),
        lambda y: b.clip(b.hardswish(y), -1.0, 4.0),
    ]
    for index, chain in enumerate(chains):
        with b.scope(f"act{index}"):
            x = chain(b.conv_norm(x, c, c, 3))
    return x


def _opzoo_channel_constants(b: GraphBuilder, x: str, c: int) -> str:
    """Add, Sub (constant first), Mul, Div, Max, Min, Sum, Pow with per-channel [C, 1, 1] constants."""
    with b.scope("channel_consts"):
        x = b.conv_norm(x, c, c, 3)
        x = b.add(x, b.channel_const(c, -0.5, 0.5))
        x = b.binary("Sub", b.channel_const(c, -0.5, 0.5), x)
        x = b.mul(x, b.channel_const(c, 0.5, 1.5))
        x = b.binary("Div", x, b.channel_const(c, 0.5, 2.0))
        x = b.binary("Max", x, b.channel_const(c, -1.0, -0.2))
        x = b.binary("Min", x, b.channel_const(c, 0.2, 1.0))
        x = b.node("Sum", [x, b.channel_const(c, -0.5, 0.5), b.channel_const(c, -0.5, 0.5)])
        return b.binary("Pow", x, b.const(b.rng.integers(1, 3, (c, 1, 1))))


def _opzoo_two_activations(b: GraphBuilder, x: str, c: int) -> str:
    """Add/Sub/Mul/Div/Max/Min/Pow between a Relu branch and a Sigmoid branch, then Sum."""
    with b.scope("two_branches"):
        a = b.conv_norm(x, c, c, 3, act="relu")
        g = b.conv_norm(x, c, c, 3, act="sigmoid")
        positive = b.add(g, b.scalar(0.5))
        terms = [b.binary(op, a, g) for op in ("Add", "Sub", "Mul", "Max", "Min")]
        terms.append(b.binary("Div", a, positive))
        terms.append(b.binary("Pow", positive, b.unary("Tanh", a)))
        return b.node("Sum", terms)


def _opzoo_pools(b: GraphBuilder, x: str, c: int) -> str:
    """MaxPool, AveragePool, LpPool between convs; a gate from global pools and reductions."""
    with b.scope("pools"):
        x = b.maxpool(b.conv_norm(x, c, c, 3, act="relu"), 3, 1, 1)
        x = b.avgpool(b.conv_norm(x, c, c, 3), 3, 2, 1)
        x = b.node("LpPool", [b.conv_norm(x, c, c, 3)], kernel_shape=[3, 3], pads=[1] * 4, p=2)
        x = b.conv_norm(x, c, c, 3)
    with b.scope("global_gate"):
        gates = [b.unary("GlobalAveragePool", x), b.unary("GlobalMaxPool", x),
                 b.reduce("ReduceMean", x, [2, 3], keepdims=True), b.reduce("ReduceMax", x, [2, 3], keepdims=True)]
        gates += [b.unsqueeze(b.reduce(op, x, [2, 3], keepdims=False), [2, 3]) for op in ("ReduceMean", "ReduceMax")]
        return b.mul(x, b.unary("Sigmoid", b.node("Sum", gates)))


@register("opzoo_a")
def opzoo_a(b: GraphBuilder, size: str) -> None:
    """Op coverage A: normalizations, activations, Cast, per-channel and two-tensor binary
    ops, pooling, global pooling, spatial reductions (keepdims 0 and 1) into Gemm."""
    spec = OPZOO[size]
    c = spec["channels"]
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, spec["hw"], spec["hw"]]), 3, c, 3)
    x = _opzoo_activations(b, x, c)
    x = _opzoo_channel_constants(b, x, c)
    x = _opzoo_two_activations(b, x, c)
    x = _opzoo_pools(b, x, c)
    with b.scope("head"):
        x = b.maxpool(b.conv_norm(x, c, c, 1, act="relu"), 4, 4)
        summed = b.add(b.reduce("ReduceSum", x, [2, 3], keepdims=False),
                       b.flatten(b.reduce("ReduceSum", x, [2, 3], keepdims=True)))
        b.output(b.gemm(summed, c, spec["classes"], gain=1.0 / (spec["hw"] // 8) ** 4), "logits")


def _opzoo_channel_axis(b: GraphBuilder, x: str, c: int) -> str:
    """Concat, Split (unequal) and Slice on the channel axis between convs."""
    with b.scope("channel_axis"):
        half = c // 2
        y = b.concat([b.conv_norm(x, c, c, 3, act="relu"), b.conv_norm(x, c, half, 3, act="relu")])
        low, high = b.split(y, [half, c])
        y = b.concat([b.conv_norm(high, c, c, 3, act="relu"), low])
        return b.conv_norm(b.slice(y, c // 4, c // 4 + c), c, c, 3, act="relu")


def _opzoo_layout(b: GraphBuilder, x: str, c: int) -> str:
    """Pad (constant, reflect), DepthToSpace (DCR, CRD) / SpaceToDepth, Transpose, channels-last
    MatMul, Softmax and LogSoftmax over the width axis."""
    crd = "CRD" if b.opset >= 11 else "DCR"  # DepthToSpace has no mode attribute before opset 11
    with b.scope("pads"):
        x = b.conv(b.pad(x, [1, 1, 1, 1]), c, c, 3, pad=0)
        x = b.conv_norm(b.pad(x, [1, 1, 1, 1], mode="reflect"), c, c, 3, pad=0, act="relu")
    for mode in ("DCR", crd):
        with b.scope(f"depth_to_space_{mode}"):
            y = b.conv_norm(b.depth_to_space(x, 2, mode), c // 4, c // 4, 3, act="relu")
            x = b.conv_norm(b.node("SpaceToDepth", [y], blocksize=2), c, c, 3, act="relu")
    with b.scope("transpose"):
        x = b.transpose(b.conv_norm(b.transpose(x, [0, 1, 3, 2]), c, c, 3, act="relu"), [0, 1, 3, 2])
        y = b.unary("Relu", b.matmul(b.transpose(x, [0, 2, 3, 1]), c, c, gain=2.0))
        x = b.transpose(y, [0, 3, 1, 2])
    with b.scope("softmax"):
        x = b.node("Softmax", [b.conv_norm(x, c, c, 3)], axis=3)
        x = b.node("LogSoftmax", [b.conv_norm(x, c, c, 3)], axis=2)
        return b.conv_norm(x, c, c, 3, act="relu")


def _opzoo_conv_kinds(b: GraphBuilder, x: str, c: int, hw: int) -> str:
    """Depthwise, depthwise x2 multiplier, grouped, dilated convs; ConvTranspose dense and
    grouped; Resize nearest / linear (sizes form at opset 18+)."""
    with b.scope("conv_kinds"):
        x = b.conv_norm(x, c, c, 3, groups=c, act="relu")
        x = b.conv_norm(x, c, 2 * c, 3, groups=c, act="relu")
        x = b.conv_norm(x, 2 * c, c, 3, groups=4, act="relu")
        x = b.conv_norm(x, c, c, 3, dilation=2, act="relu")
    with b.scope("up_down"):
        x = b.unary("Relu", b.conv_transpose(b.conv_norm(x, c, c, 3, 2, act="relu"), c, c))
        x = b.unary("Relu", b.conv_transpose(b.conv_norm(x, c, c, 3, 2, act="relu"), c, c, groups=4))
        x = b.resize(b.conv_norm(b.maxpool(x, 2, 2), c, c, 3, act="relu"))
        x = b.resize(b.conv_norm(b.avgpool(x, 2, 2), c, c, 3, act="relu"), mode="linear", sizes_hw=[hw, hw])
        return b.conv_norm(x, c, c, 3, act="relu")


def _opzoo_heads(b: GraphBuilder, x: str, c: int, spec: dict) -> None:
    """Squeeze -> Gemm -> Unsqueeze gate; Flatten/Reshape into Gemm (transA/transB 0 and 1)
    and MatMul with a constant weight, summed into ``logits``."""
    with b.scope("gate"):
        s = b.squeeze(b.unary("GlobalAveragePool", x), [2, 3])
        s = b.unsqueeze(b.gemm(b.unary("Relu", b.gemm(s, c, c // 2, gain=2.0)), c // 2, c), [2, 3])
        x = b.output(b.mul(x, b.unary("Sigmoid", s)), "features")
    pool, classes = spec["head_pool"], spec["classes"]
    small = b.maxpool(b.conv_norm(x, c, c, 3, act="relu"), pool, pool)
    with b.scope("heads"):
        features = c * (spec["hw"] // pool) ** 2
        g1 = b.gemm(b.flatten(small), features, classes, trans_b=False)
        g2 = b.gemm(b.transpose(b.reshape(small, [-1, features]), [1, 0]), features, classes, trans_a=True)
        g3 = b.matmul(b.reshape(small, [0, features]), features, classes)
        b.output(b.node("Sum", [g1, g2, g3]), "logits")


@register("opzoo_b")
def opzoo_b(b: GraphBuilder, size: str) -> None:
    """Op coverage B: channel-axis Concat/Split/Slice, Pad, DepthToSpace/SpaceToDepth,
    Transpose, Softmax, conv kinds, ConvTranspose, Resize, Squeeze/Unsqueeze, Gemm/MatMul heads."""
    spec = OPZOO[size]
    c, hw = spec["channels"], spec["hw"]
    with b.scope("stem"):
        x = b.conv_norm(b.input("input", [3, hw, hw]), 3, c, 3, act="relu")
    x = _opzoo_channel_axis(b, x, c)
    x = _opzoo_layout(b, x, c)
    x = _opzoo_conv_kinds(b, x, c, hw)
    _opzoo_heads(b, x, c, spec)
