"""Write ``models/demo.onnx``, the small classifier of the README's first command.

    python -m models.make_demo            # (re)writes models/demo.onnx
    python -m models.make_demo --check    # exit 1 when the committed file is not what the builder writes

The model is the zoo's ``demo`` (ResNet/MobileNet hybrid with BatchNormalization kept, so BN
folding has work); the same settings always give the same bytes.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import onnx

from models.zoo import build

LOG = logging.getLogger(__name__)
DEMO_PATH = Path(__file__).resolve().with_name("demo.onnx")
DEMO_SETTINGS = dict(opset=17, seed=0, batch=1, keep_bn=True, size="small")


def demo_model() -> onnx.ModelProto:
    return build("demo", **DEMO_SETTINGS)


def demo_bytes() -> bytes:
    return demo_model().SerializeToString()


def write_demo(path: Path = DEMO_PATH) -> Path:
    data = demo_bytes()
    path.write_bytes(data)
    LOG.info("wrote %s (%d bytes)", path, len(data))
    return path


def is_current(path: Path = DEMO_PATH) -> bool:
    """True when ``path`` holds exactly the bytes the builder writes now."""
    return path.is_file() and path.read_bytes() == demo_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEMO_PATH, help="where to write the model")
    parser.add_argument("--check", action="store_true", help="only compare the file with the builder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        current = is_current(args.output)
        LOG.info("%s is %s", args.output, "current" if current else "stale: run python -m models.make_demo")
        return 0 if current else 1
    write_demo(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
