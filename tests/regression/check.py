"""Output regression check: every covered model, pruned at fixed options, must give the same bytes.

    python -m tests.regression.check             # compare with tests/regression/reference.json
    python -m tests.regression.check --update    # regenerate the reference (commit says why)
    python -m tests.regression.check --only zoo:resnet18

A case is one model (a zoo builder from ``models/`` or a third-party model in
``../shared/models/``) run through one CLI command with fixed options; its result is the SHA-256
of the written model (and, for ``plan``, of the plan JSON). The reference holds the hashes of the
code that was there when it was last regenerated; a refactoring must not change any of them.
Everything is written into a temporary directory.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).with_name("reference.json")
SHARED = ROOT.parent / "shared" / "models"
SHARED_MODELS = ("ultraface-slim-320.onnx", "yolox-nano.onnx", "fastestdet.onnx", "mnist-cntk.onnx",
                 "image-classifier32.onnx", "road-segmentation-adas-nhwc.onnx")
ZOO_MODELS = ("demo", "densenet", "efficientnet", "mobilenetv2", "mobilenetv3", "nhwc", "opzoo_a", "opzoo_b",
              "resnet18", "resnet50", "resnext", "shufflenetv2", "shufflenetv2_gather", "shufflenetv2_slice",
              "unet", "vgg", "vgg_reshape", "yolo_neck")

#: (name, command, options); ``{calib}`` is replaced by a seeded .npz of the model's inputs
VARIANTS = (
    ("l2-0.3", "prune", ["--ratio", "0.3"]),
    ("global-0.5", "prune", ["--ratio", "0.5", "--global", "--round-to", "2"]),
    ("keepbn-macs", "prune", ["--target-macs", "0.6", "--keep-bn"]),
    ("fold", "fold", []),
    ("plan-fpgm", "plan", ["--ratio", "0.4", "--importance", "fpgm"]),
)
#: data-driven variants (calibration, compensation, refit) run on a subset: they are slower
CALIB_VARIANTS = (
    ("fluct-refit", "prune", ["--ratio", "0.3", "--importance", "fluctuation", "--calib", "{calib}",
                              "--calib-samples", "4", "--refit"]),
    ("activation", "prune", ["--ratio", "0.25", "--importance", "activation", "--calib", "{calib}",
                             "--calib-samples", "4", "--no-compensate"]),
)
CALIB_MODELS = ("zoo:resnet18", "zoo:mobilenetv3", "zoo:shufflenetv2", "zoo:densenet", "shared:ultraface-slim-320.onnx",
                "shared:mnist-cntk.onnx", "shared:fastestdet.onnx")


@dataclass(frozen=True)
class Case:
    model: str      # "zoo:<name>" or "shared:<file>"
    variant: str
    command: str
    options: tuple

    @property
    def key(self) -> str:
        return f"{self.model}/{self.variant}"


def cases() -> list[Case]:
    models = [f"zoo:{n}" for n in ZOO_MODELS] + [f"shared:{n}" for n in SHARED_MODELS]
    out = [Case(m, v, c, tuple(o)) for m in models for v, c, o in VARIANTS]
    out += [Case(m, v, c, tuple(o)) for m in CALIB_MODELS for v, c, o in CALIB_VARIANTS]
    return out


def model_path(model: str, workdir: Path) -> Path | None:
    kind, name = model.split(":", 1)
    if kind == "shared":
        path = SHARED / name
        return path if path.is_file() else None
    path = workdir / f"{name}.onnx"
    if not path.exists():
        from models.zoo import build

        onnx.save(build(name), path)
    return path


def calib_file(path: Path, workdir: Path) -> Path:
    """Four seeded random samples of the model's inputs (symbolic dims set to 1)."""
    out = workdir / f"{path.stem}-calib.npz"
    if out.exists():
        return out
    model = onnx.load(path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(0)
    arrays = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
        arrays[vi.name] = rng.standard_normal([4] + dims).astype(np.float32)
    np.savez(out, **arrays)
    return out


def run_case(case: Case, workdir: Path) -> str | None:
    """The SHA-256 of what the case writes, or None when its model is not available here."""
    from graphprune.cli import main as run

    path = model_path(case.model, workdir)
    if path is None:
        return None
    options = [str(calib_file(path, workdir)) if o == "{calib}" else o for o in case.options]
    out = workdir / f"{case.key.replace(':', '_').replace('/', '__')}.{'json' if case.command == 'plan' else 'onnx'}"
    argv = [case.command, str(path), "-o", str(out), *options]
    if case.command == "prune":
        argv.append("--no-validate")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = run(argv)
    if code != 0:
        return f"exit {code}: {err.getvalue().strip()[:200]}"
    return hashlib.sha256(out.read_bytes()).hexdigest()


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the reference with today's results")
    parser.add_argument("--only", action="append", default=[], help="only cases whose key starts with this")
    args = parser.parse_args(argv)
    reference = load_reference()
    results, missing, differ = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases():
            if args.only and not any(case.key.startswith(p) for p in args.only):
                continue
            digest = run_case(case, Path(tmp))
            if digest is None:
                missing.append(case.key)
                continue
            results[case.key] = digest
            status = "same" if reference.get(case.key) == digest else ("new" if case.key not in reference else "DIFFERS")
            if status == "DIFFERS":
                differ.append(case.key)
            print(f"{status:8} {case.key}  {digest[:16]}")
    if missing:
        print(f"not available here ({len(missing)}): {', '.join(missing)}")
    if args.update:
        REFERENCE.write_text(json.dumps({**reference, **results}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {REFERENCE} ({len(results)} cases)")
        return 0
    print(f"{len(results) - len(differ)} of {len(results)} cases give the reference bytes")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
