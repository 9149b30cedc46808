"""Quality of pruning without retraining: output agreement against MACs removed, per criterion.

    python benchmarks/bench_quality.py                       # yolox-nano and ultraface-slim-320
    python benchmarks/bench_quality.py --models yolox-nano --removed 0.2,0.4 --criteria l2,fluctuation+comp

Real pretrained detectors from ``../shared/models/`` and real photos shipped with scikit-image
(``skimage/data``; nothing is downloaded). Seeded random crops of one set of photos are the
calibration data; other whole photos (and two mosaics of the LFW faces in ``lfw_subset.npy``,
for the face detector) are the evaluation set. For every MACs-removed level each criterion
prunes with ``--target-macs`` (so all criteria land on the same MACs, within 1 %), and the
pruned model is compared with the original on the evaluation photos:

* **cosine**: cosine similarity of the detection score maps (YOLOX: objectness x class
  scores of all 3549 anchors; UltraFace: face probability of all 4420 anchors), mean over
  photos;
* **det F1**: the original's detections (score threshold, class-wise NMS) are the reference;
  a pruned detection matches one of the same class with IoU >= 0.5; F1 per photo, mean over
  photos with a reference detection.

Criteria: ``random``, ``l2``, ``fluctuation`` (plain removal), ``fluctuation+comp``
(calibration means folded into the consumers' biases) and ``fluctuation+refit`` (plus the
least-squares re-fit of the consumers' kept weights); ``l2+comp`` isolates compensation.
The Markdown table is followed by the command that produced it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from graphprune.api import prune  # noqa: E402
from graphprune.io import load_model  # noqa: E402
from graphprune.profiling import profile  # noqa: E402
from graphprune.validation.runner import make_session  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
CALIB_PHOTOS = ("rocket", "hubble_deep_field", "retina", "ihc", "coins", "moon", "brick", "grass", "gravel",
                "cell", "page", "text", "clock_motion", "color", "logo", "microaneurysms", "motorcycle_right")
EVAL_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "motorcycle_left")
#: label -> (importance, compensate, refit)
CRITERIA = {"random": ("random", False, False), "l2": ("l2", False, False), "l2+comp": ("l2", True, False),
            "fluctuation": ("fluctuation", False, False), "fluctuation+comp": ("fluctuation", True, False),
            "fluctuation+refit": ("fluctuation", True, True)}
DEFAULT_CRITERIA = ("random", "l2", "l2+comp", "fluctuation", "fluctuation+comp", "fluctuation+refit")
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


def crops(count: int, seed: int = SEED) -> list[np.ndarray]:
    """Seeded random crops (30-100 % of the short side) of the calibration photos and face mosaics."""
    rng = np.random.default_rng(seed)
    pool = [load_photo(n) for n in CALIB_PHOTOS] + [lfw_mosaic(100), lfw_mosaic(150)]
    out = []
    for i in range(count):
        img = pool[i % len(pool)]
        side = int(min(img.shape[:2]) * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, img.shape[0] - side + 1), rng.integers(0, img.shape[1] - side + 1)
        out.append(img[y:y + side, x:x + side])
    return out


def eval_photos() -> list[np.ndarray]:
    return [load_photo(n) for n in EVAL_PHOTOS] + [lfw_mosaic(0), lfw_mosaic(40)]


# ----------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Detector:
    """How to feed one model and read its scores and detections."""

    file: str
    input: str
    size: tuple[int, int]
    bgr: bool
    scale: float
    mean: float
    std: float
    scores: Callable          # outputs -> 1-D score map
    detections: Callable      # outputs -> (boxes [n, 4] x1y1x2y2, classes [n], scores [n])

    def feed(self, rgb: np.ndarray) -> dict:
        from PIL import Image

        h, w = self.size
        img = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR), np.float32)
        if self.bgr:
            img = img[..., ::-1]
        x = (img / 255.0 * self.scale - self.mean) / self.std
        return {self.input: np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)}


def _yolox_grid(size: int = 416) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in (8, 16, 32):
        n = size // stride
        yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xx.ravel(), yy.ravel()], axis=1))
        strides.append(np.full(n * n, stride))
    return np.concatenate(grids).astype(np.float64), np.concatenate(strides).astype(np.float64)


YOLOX_GRID, YOLOX_STRIDE = _yolox_grid()


def _yolox_scores(out: dict) -> np.ndarray:
    o = out["output"][0].astype(np.float64)
    return (o[:, 4:5] * o[:, 5:]).ravel()


def _yolox_detections(out: dict, threshold: float = 0.3):
    o = out["output"][0].astype(np.float64)
    xy = (o[:, :2] + YOLOX_GRID) * YOLOX_STRIDE[:, None]
    wh = np.exp(np.clip(o[:, 2:4], -10, 10)) * YOLOX_STRIDE[:, None]
    scores = o[:, 4:5] * o[:, 5:]
    cls, best = scores.argmax(axis=1), scores.max(axis=1)
    keep = best >= threshold
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)[keep]
    return nms(boxes, cls[keep], best[keep], 0.45)


def _face_scores(out: dict) -> np.ndarray:
    return out["scores"][0][:, 1].astype(np.float64)


def _face_detections(out: dict, threshold: float = 0.7):
    scores = out["scores"][0][:, 1].astype(np.float64)
    keep = scores >= threshold
    boxes = out["boxes"][0].astype(np.float64)[keep]
    return nms(boxes, np.zeros(int(keep.sum()), np.int64), scores[keep], 0.3)


MODELS = {
    "yolox-nano": Detector("yolox-nano.onnx", "images", (416, 416), bgr=True, scale=255.0, mean=0.0, std=1.0,
                           scores=_yolox_scores, detections=_yolox_detections),
    "ultraface-slim-320": Detector("ultraface-slim-320.onnx", "input", (240, 320), bgr=False, scale=255.0,
                                   mean=127.0, std=128.0, scores=_face_scores, detections=_face_detections),
}


# ----------------------------------------------------------------------------------- metrics
def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def nms(boxes, classes, scores, threshold: float):
    """Class-wise greedy non-maximum suppression; returns the kept (boxes, classes, scores)."""
    order = np.argsort(-scores)
    kept = []
    while order.size:
        i, order = order[0], order[1:]
        kept.append(i)
        if order.size:
            same = classes[order] == classes[i]
            order = order[~(same & (iou(boxes[i], boxes[order]) > threshold))]
    kept = np.array(kept, dtype=np.int64)
    return boxes[kept], classes[kept], scores[kept]


def detection_f1(reference, candidate, threshold: float = 0.5) -> float | None:
    """F1 of ``candidate`` detections against ``reference`` ones (same class, IoU >= threshold)."""
    rb, rc, _ = reference
    cb, cc, _ = candidate
    if len(rb) == 0:
        return None
    used = np.zeros(len(rb), dtype=bool)
    hits = 0
    for box, cls in zip(cb, cc):
        ok = (~used) & (rc == cls)
        if ok.any():
            overlaps = np.where(ok, iou(box, rb), 0.0)
            j = int(overlaps.argmax())
            if overlaps[j] >= threshold:
                used[j] = True
                hits += 1
    return 2.0 * hits / (len(rb) + len(cb))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def outputs_of(model, feeds: list[dict]) -> list[dict]:
    session = make_session(model, exact=False, label="benchmark model")
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, f))) for f in feeds]


def agreement(spec: Detector, reference: list[dict], candidate: list[dict]) -> tuple[float, float]:
    cos = np.mean([cosine(spec.scores(r), spec.scores(c)) for r, c in zip(reference, candidate)])
    f1 = [detection_f1(spec.detections(r), spec.detections(c)) for r, c in zip(reference, candidate)]
    f1 = [v for v in f1 if v is not None]
    return float(cos), float(np.mean(f1)) if f1 else float("nan")


# ----------------------------------------------------------------------------------- run
@dataclass
class Row:
    model: str
    removed: float
    criterion: str
    macs_kept: float
    cosine: float
    f1: float
    seconds: float


def run_model(name: str, removed_levels, criteria, calib_count: int, global_rank: bool, log) -> list[Row]:
    spec = MODELS[name]
    path = SHARED / spec.file
    if not path.is_file():
        raise SystemExit(f"bench_quality: {path} not found (the third-party models live in ../shared/models/)")
    original = load_model(path)
    calib = [spec.feed(c) for c in crops(calib_count)]
    evaluation = [spec.feed(p) for p in eval_photos()]
    reference = outputs_of(original, evaluation)
    base_macs = profile(original, progress=False).total_macs
    rows = []
    for removed in removed_levels:
        for label in criteria:
            importance, compensate, refit = CRITERIA[label]
            start = time.perf_counter()
            result = prune(original, target_macs=round(1.0 - removed, 6), importance=importance,
                           calib=calib, calib_samples=None, compensate=compensate, refit=refit,
                           global_rank=global_rank, validate=False, seed=SEED)
            cos, f1 = agreement(spec, reference, outputs_of(result.model, evaluation))
            row = Row(name, removed, label, result.macs_after / base_macs, cos, f1, time.perf_counter() - start)
            log(f"{name} -{removed:.0%} {label:17s} MACs kept {row.macs_kept:.3f} cosine {cos:.4f} F1 {f1:.3f} "
                f"({row.seconds:.1f}s)")
            rows.append(row)
    return rows


def table(rows: list[Row], criteria) -> list[str]:
    lines = ["| model | MACs removed | " + " | ".join(criteria) + " |",
             "|---|---|" + "---|" * len(criteria)]
    keys = sorted({(r.model, r.removed) for r in rows}, key=lambda k: (list(MODELS).index(k[0]), k[1]))
    for model, removed in keys:
        cells = []
        for label in criteria:
            r = next(x for x in rows if x.model == model and x.removed == removed and x.criterion == label)
            cells.append(f"{r.cosine:.3f} / {r.f1:.2f}")
        worst = max(abs(x.macs_kept - (1 - removed)) for x in rows if x.model == model and x.removed == removed)
        lines.append(f"| {model} | {removed:.0%} (±{worst:.2%}) | " + " | ".join(cells) + " |")
    return lines


def _floats(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v]
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in (0, 1), got {text!r}")
    return values


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="yolox-nano,ultraface-slim-320",
                    help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--removed", type=_floats, default=[0.05, 0.1, 0.2, 0.3, 0.4, 0.5],
                    help="fractions of the MACs to remove (default 0.05,0.1,0.2,0.3,0.4,0.5)")
    ap.add_argument("--criteria", default=",".join(DEFAULT_CRITERIA), help=f"from {', '.join(CRITERIA)}")
    ap.add_argument("--calib", type=int, default=32, help="calibration crops (default 32)")
    ap.add_argument("--global", dest="global_rank", action="store_true", help="global ranking instead of local")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    criteria = [c for c in args.criteria.split(",") if c]
    bad = [m for m in models if m not in MODELS] + [c for c in criteria if c not in CRITERIA]
    if bad:
        ap.error(f"unknown model or criterion: {', '.join(bad)}")
    rows = []
    for name in models:
        rows += run_model(name, args.removed, criteria, args.calib, args.global_rank,
                          lambda text: print(text, file=sys.stderr, flush=True))
    print("cells: cosine of the score maps / detection F1 against the original's detections "
          "(mean over the evaluation photos)\n")
    print("\n".join(table(rows, criteria)))
    print(f"\n`{shlex.join(['python', 'benchmarks/bench_quality.py'] + list(sys.argv[1:] if argv is None else argv))}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
