"""Real handwritten digits for the README's tour: scikit-learn's digits as 28x28 MNIST-style inputs.

    python benchmarks/make_digits.py digits.npz --count 400            # digits 0..399
    python benchmarks/make_digits.py held-out.npz --start 1000 --count 400

The 1,797 8x8 scans of ``sklearn.datasets.load_digits`` ship inside scikit-learn (a test extra;
nothing is downloaded). Each is scaled to a 20x20 box centred in a 28x28 frame, values 0..255, as
MNIST digits are, and stacked as ``Input3`` ``[count, 1, 28, 28]`` (the input of
``mnist-cntk.onnx``): an ``.npz`` graphprune reads as ``count`` samples.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_data as qd  # noqa: E402

TOTAL = 1797


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the .npz file to write")
    parser.add_argument("--start", type=int, default=0, help="first digit (default 0)")
    parser.add_argument("--count", type=int, default=400, help="how many digits (default 400)")
    args = parser.parse_args(argv)
    if not (0 <= args.start and 1 <= args.count and args.start + args.count <= TOTAL):
        parser.error(f"--start and --count must pick digits within 0..{TOTAL - 1}")
    if args.output.suffix != ".npz":
        parser.error("the output must be an .npz file")
    images = np.stack(qd.digits(args.start, args.count))[:, None]
    np.savez(args.output, Input3=images.astype(np.float32))
    print(f"wrote {args.output}: Input3 {list(images.shape)} (digits {args.start}..{args.start + args.count - 1})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
