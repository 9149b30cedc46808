"""Data and models of the quality benchmark (``bench_quality.py``): real photos, real digits, real models.

Nothing is downloaded. Photos are the ones scikit-image ships (``skimage/data``); the digits are
scikit-learn's bundled ``load_digits`` (1797 handwritten 8x8 digits, upscaled into a 28x28 MNIST
frame). Calibration and evaluation never share a photo (or a digit):

* detectors: seeded random crops of :data:`CALIB_PHOTOS` (and two mosaics of LFW faces) calibrate;
  seeded crops of :data:`EVAL_PHOTOS` (and two other face mosaics) evaluate;
* the MNIST classifier: digits ``[0, n)`` calibrate, digits from :data:`DIGIT_EVAL_START` on evaluate
  (``load_digits`` order; the 1797 images are read from the data file scikit-learn ships).

Drift is the issue's definition: ``cosine`` → 1 − the mean over samples of the cosine similarity of
each output (flattened) to the original's, worst output; ``top1`` → 1 − top-1 agreement. For
UltraFace the compared outputs are the face probabilities (not the two-class softmax, whose
background column stays near 1 and kept the raw cosine above 0.996 with 89 % of the MACs removed)
and the boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models"
CALIB_PHOTOS = ("rocket", "hubble_deep_field", "retina", "ihc", "coins", "moon", "brick", "grass", "gravel",
                "cell", "page", "text", "clock_motion", "color", "logo", "microaneurysms", "motorcycle_right")
EVAL_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "motorcycle_left")
#: evaluation digits start here (calibration digits are the first ones)
DIGIT_EVAL_START = 1000
SEED = 0


# ----------------------------------------------------------------------------------- photos
def _data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_photo(name: str) -> np.ndarray:
    """An RGB uint8 photo of ``skimage/data`` (grey ones replicated to three channels)."""
    from PIL import Image

    path = next(p for p in _data_dir().iterdir() if p.stem == name and p.suffix in (".png", ".jpg"))
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def lfw_mosaic(first: int, rows: int = 3, cols: int = 4, tile: int = 80) -> np.ndarray:
    """A photo-sized grid of LFW faces (``lfw_subset.npy``: 200 grey 25x25 faces)."""
    from PIL import Image

    faces = np.load(_data_dir() / "lfw_subset.npy")
    canvas = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for k in range(rows * cols):
        face = Image.fromarray((faces[first + k] * 255).astype(np.uint8)).resize((tile, tile), Image.BILINEAR)
        r, c = divmod(k, cols)
        canvas[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = np.asarray(face.convert("RGB"))
    return canvas


def _crops(pool: list[np.ndarray], count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        img = pool[i % len(pool)]
        side = int(min(img.shape[:2]) * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, img.shape[0] - side + 1), rng.integers(0, img.shape[1] - side + 1)
        out.append(img[y:y + side, x:x + side])
    return out


def crops(count: int, seed: int = SEED) -> list[np.ndarray]:
    """Seeded random crops (30-100 % of the short side) of the calibration photos and face mosaics."""
    return _crops([load_photo(n) for n in CALIB_PHOTOS] + [lfw_mosaic(100), lfw_mosaic(150)], count, seed)


def eval_crops(count: int, seed: int = SEED + 1) -> list[np.ndarray]:
    """The evaluation photos and two other face mosaics, whole first, then seeded crops."""
    pool = [load_photo(n) for n in EVAL_PHOTOS] + [lfw_mosaic(0), lfw_mosaic(40)]
    return (pool + _crops(pool, max(count - len(pool), 0), seed))[:count]


def _digit_images() -> np.ndarray:
    """The 1797 8x8 images of ``sklearn.datasets.load_digits`` (values 0-16), read from the file
    scikit-learn ships (importing scikit-learn takes seconds; its data file does not)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise SystemExit("bench_quality: the mnist data needs scikit-learn (pip install scikit-learn)")
    with gzip.open(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :64].reshape(-1, 8, 8)


def digits(start: int, count: int, box: int = 20) -> list[np.ndarray]:
    """``load_digits`` images ``[start, start + count)`` as 28x28 float32 in [0, 255], digit in a centred box."""
    from PIL import Image

    images = _digit_images()[start:start + count]
    out = []
    for img in images:
        small = Image.fromarray((img / 16 * 255).astype(np.uint8)).resize((box, box), Image.BILINEAR)
        frame = np.zeros((28, 28), np.float32)
        o = (28 - box) // 2
        frame[o:o + box, o:o + box] = np.asarray(small, np.float32)
        out.append(frame)
    return out


def calib_digits(count: int) -> list[np.ndarray]:
    if count > DIGIT_EVAL_START:
        raise ValueError(f"at most {DIGIT_EVAL_START} calibration digits: the evaluation digits start at "
                         f"{DIGIT_EVAL_START}")
    return digits(0, count)


# ----------------------------------------------------------------------------------- models
def same(outputs: list[np.ndarray]) -> list[np.ndarray]:
    return outputs


def face_map(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """UltraFace: the face probability of every anchor instead of the two-class softmax (whose
    background column, about 1 almost everywhere, hides any change), and the boxes."""
    scores, boxes = outputs
    return [scores[..., 1], boxes]


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model: its file, its drift metric, how its calibration and evaluation feeds are made,
    and which arrays of its outputs the drift compares (``view``)."""

    file: str
    metric: str
    calibration: Callable[[int], list[dict]]
    evaluation: Callable[[int], list[dict]]
    view: Callable = same

    @property
    def path(self) -> Path:
        return SHARED / self.file


def image_feed(name: str, size: tuple[int, int], *, bgr: bool, scale: float, mean: float, std: float):
    """rgb photo -> {name: NCHW float32}: resized, optionally BGR, ``(x / 255 * scale - mean) / std``."""
    from PIL import Image

    def feed(rgb: np.ndarray) -> dict:
        h, w = size
        img = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR), np.float32)
        img = img[..., ::-1] if bgr else img
        x = (img / 255.0 * scale - mean) / std
        return {name: np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)}

    return feed


def detector(file: str, feed, view=same) -> ModelSpec:
    return ModelSpec(file, "cosine", lambda n: [feed(c) for c in crops(n)], lambda n: [feed(c) for c in eval_crops(n)],
                     view)


MODELS = {
    "yolox-nano": detector("yolox-nano.onnx", image_feed("images", (416, 416), bgr=True, scale=255.0, mean=0.0,
                                                         std=1.0)),
    "ultraface-slim-320": detector("ultraface-slim-320.onnx", image_feed("input", (240, 320), bgr=False, scale=255.0,
                                                                         mean=127.0, std=128.0), face_map),
    "fastestdet": detector("fastestdet.onnx", image_feed("input", (352, 352), bgr=True, scale=1.0, mean=0.0,
                                                         std=1.0)),
    "mnist-cntk": ModelSpec("mnist-cntk.onnx", "top1", lambda n: [{"Input3": d[None, None]} for d in calib_digits(n)],
                            lambda n: [{"Input3": d[None, None]} for d in digits(DIGIT_EVAL_START, n)]),
}


# ----------------------------------------------------------------------------------- drift
def outputs_of(model, feeds: list[dict], view=same) -> list[list[np.ndarray]]:
    """``view`` of the outputs of ``model`` on every feed (onnxruntime, all graph optimizations)."""
    from graphprune.validation.runner import make_session

    session = make_session(model, exact=False, label="benchmark model")
    return [view([np.asarray(v, np.float64) for v in session.run(None, f)]) for f in feeds]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def drift(metric: str, reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]]) -> float:
    """1 − worst-output mean cosine (``cosine``) or 1 − top-1 agreement of the first output (``top1``)."""
    if metric == "top1":
        same = [int(np.argmax(r[0]) == np.argmax(c[0])) for r, c in zip(reference, candidate)]
        return 1.0 - float(np.mean(same))
    per_output = np.array([[cosine(r, c) for r, c in zip(rs, cs)] for rs, cs in zip(reference, candidate)])
    return 1.0 - float(per_output.mean(axis=0).min())
