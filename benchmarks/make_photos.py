"""Real photos for the README's tour: seeded crops of the scikit-image sample photos, as PNG files.

    python benchmarks/make_photos.py photos/ --size 240x320 --count 48

The photos ship inside scikit-image (a test extra; nothing is downloaded). Each file is a random
crop (seeded) of one photo, resized to ``--size`` (height x width), so a folder of them is a
calibration set for ``graphprune prune --calib photos/`` (with ``--mean``/``--std`` as the model
expects).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "hubble_deep_field", "retina", "coins",
          "moon", "brick", "grass", "gravel", "immunohistochemistry", "page", "text", "horse", "clock")


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photo of ``skimage.data`` (grey ones replicated to three channels)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    image = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def crops(count: int, height: int, width: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool = [photo(n) for n in PHOTOS]
    for i in range(count):
        image = pool[i % len(pool)]
        h, w = image.shape[:2]
        ch = int(rng.integers(h // 2, h + 1))
        cw = min(w, max(8, int(ch * width / height)))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        yield Image.fromarray(image[top:top + ch, left:left + cw]).resize((width, height), Image.BILINEAR)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--size", default="240x320", help="height x width (default 240x320)")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(crops(args.count, height, width, args.seed)):
        image.save(folder / f"photo_{i:03d}.png")
    print(f"wrote {args.count} photos of {height}x{width} into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
