"""``validate``: run a reference and a candidate model on the same inputs and compare every output.

Both sessions run on the CPU provider with every ORT graph optimization disabled, so the
comparison is between what the two graphs say, not between what ORT's fusions make of them.
Outputs are matched by name; when no name matches but the counts do, by position (a note says so).

An output passes when it is within ``rtol``/``atol`` element by element (``numpy.allclose``)
or when its largest error is within ``rtol_of_scale`` of its largest reference magnitude
(default :data:`FOLD_RTOL_OF_SCALE`; None turns this second criterion off).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..errors import UsageError
from ..graph.detached import Detached
from ..progress import progress as progress_iter
from .data_files import iter_inputs
from .drift import Drift, DriftAccumulator
from .feeds import random_feeds
from .metrics import OutputAccumulator, OutputMetrics
from .sizes import ResolvedShapes
from .table import metrics_table
from ..io.read import ModelFile, ModelLike, as_model, model_label
from .runner import PendingSession, is_session, make_session, output_names, run_session

log = logging.getLogger(__name__)

#: random samples used when neither data nor a sample count is given
DEFAULT_RANDOM_SAMPLES = 4

#: Tolerance of a check relative to each output's scale: an output also passes when
#: ``max |candidate - reference| <= atol + FOLD_RTOL_OF_SCALE * max |reference|``.
#: Exact rewrites (BatchNorm and affine folding, dropping zero channels) change which float32
#: roundings happen, not what is computed: folding rounds every folded weight and bias once more
#: (2**-24 of its value) and changes the order of the sums, and these roundings are carried and
#: amplified through every later layer. The error therefore grows with the magnitude of the
#: activations, not with the element compared: an element near zero of an output whose values
#: reach 1000 carries an error of about 1000 x depth x 2**-24. Issue 10 measured 1e-5 to 3e-5 of
#: the output's largest magnitude on tf2onnx ResNet50, MobileNetV2 and NASNet with their
#: BatchNorms folded (the exporter's own Conv+BN fold gives the same); 1e-4 leaves a margin of
#: three over that, while a real error (a channel dropped, a weight off by 1% in one channel of
#: a layer) shows at 1e-3 or more of the output's scale.
FOLD_RTOL_OF_SCALE = 1e-4


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of :func:`validate`: per-output metrics, the worst output and the verdict."""

    passed: bool
    outputs: tuple[OutputMetrics, ...]
    samples: int
    rtol: float
    atol: float
    data: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: the scale criterion's tolerance (None: element by element only)
    rtol_of_scale: float | None = None
    #: the input shapes the check ran with and how they were chosen (None: no sample ran)
    inputs: ResolvedShapes | None = None
    #: the drift metrics (1 - mean cosine, 1 - top-1 agreement, relative L2 error) of the same samples
    drift: Drift | None = None

    @property
    def worst(self) -> str | None:
        """Name of the output furthest outside (or closest to) its tolerance."""
        if not self.outputs:
            return None
        return max(self.outputs, key=_severity).name

    def output(self, name: str) -> OutputMetrics:
        for m in self.outputs:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed, "worst": self.worst, "samples": self.samples, "rtol": self.rtol,
            "atol": self.atol, "rtol_of_scale": self.rtol_of_scale, "data": self.data, "notes": list(self.notes),
            "inputs": self.inputs.to_dict() if self.inputs else None,
            "outputs": [m.to_dict() for m in self.outputs],
            **({"drift": self.drift.to_dict()} if self.drift is not None else {}),
        }

    def summary_lines(self) -> list[str]:
        """A compact table, worst output first and marked, then the verdict."""
        verdict = "PASSED" if self.passed else "FAILED"
        head = (f"validation {verdict}: {len(self.outputs)} output(s), {self.samples} sample(s) of {self.data}, "
                f"rtol={self.rtol:g} atol={self.atol:g}")
        if self.rtol_of_scale is not None:
            head += f" (or max error <= atol + {self.rtol_of_scale:g} x max |reference| per output)"
        ordered = sorted(self.outputs, key=_severity, reverse=True)
        inputs = [self.inputs.summary()] if self.inputs else []
        return [head, *metrics_table(ordered, self.worst), *inputs, *(f"note: {n}" for n in self.notes)]


def _severity(m: OutputMetrics) -> tuple:
    """Sort key: failures first, then by how far past the tolerance; problems (shape...) first."""
    violation = m.tolerance_ratio if np.isfinite(m.tolerance_ratio) else float("inf")
    return (not m.passed, m.problem is not None, violation, m.max_abs if np.isfinite(m.max_abs) else 0.0)


def _match_outputs(ref_names: list[str], cand_names: list[str]) -> tuple[list[tuple[str, str]], list[str], bool]:
    """Pairs (reference name, candidate name) to compare, notes, and whether every reference output is paired."""
    common = [n for n in ref_names if n in cand_names]
    if not common and len(ref_names) == len(cand_names):
        note = ("no output names in common; outputs compared by position: "
                + ", ".join(f"{r}~{c}" for r, c in zip(ref_names, cand_names)))
        return list(zip(ref_names, cand_names)), [note], True
    notes = []
    missing = [n for n in ref_names if n not in cand_names]
    extra = [n for n in cand_names if n not in ref_names]
    if missing:
        notes.append(f"candidate lacks output(s) {missing}")
    if extra:
        notes.append(f"candidate has extra output(s) {extra} (not compared)")
    return [(n, n) for n in common], notes, not missing


def _feeds(reference, data, samples, seed, input_shapes, image_options):
    """The input stream, a description of it for the report, and the shapes used (None: from the data)."""
    if data is None:
        count = DEFAULT_RANDOM_SAMPLES if samples is None else samples
        feeds, resolved = random_feeds(reference, count, seed, input_shapes)
        return feeds, f"seeded random inputs (seed {seed})", resolved
    label = str(data) if not isinstance(data, (Mapping, list, tuple)) else "given arrays"
    return iter_inputs(data, reference, limit=samples, **(image_options or {})), label, None


def pending_reference(model: onnx.ModelProto | Detached | ModelFile, *, exact: bool, label: str,
                      samples: int | None = None, seed: int = 0, input_shapes: Mapping | None = None,
                      threads: int | None = None, spin: bool = True) -> PendingSession:
    """The session of ``model`` made on a worker thread, which also runs the seeded random feeds that
    :func:`validate` makes with the same ``samples``, ``seed`` and ``input_shapes`` (without data):
    given as ``validate``'s reference, its outputs are not computed again."""
    feeds, _, resolved = _feeds(_inputs_model(model), None, samples, seed, input_shapes, None)
    return PendingSession(model, exact=exact, label=label, feeds=feeds,
                          feeds_key=(_random_key(samples, seed, input_shapes), resolved), threads=threads, spin=spin)


def _random_key(samples: int | None, seed: int, input_shapes: Mapping | None) -> tuple:
    return DEFAULT_RANDOM_SAMPLES if samples is None else samples, seed, input_shapes


def _ran_already(reference, data, samples, seed, input_shapes):
    """(feeds, label, shapes) of a pending reference that ran the feeds ``validate`` would make, else None."""
    if not isinstance(reference, PendingSession) or data is not None or reference.feeds_key is None:
        return None
    key, resolved = reference.feeds_key
    if key != _random_key(samples, seed, input_shapes):
        return None
    return reference.feeds, f"seeded random inputs (seed {seed})", resolved


def _inputs_model(value) -> onnx.ModelProto:
    """The ModelProto whose graph inputs the feeds follow (a detached model's skeleton)."""
    if isinstance(value, PendingSession):
        return value.model
    return value.proto if isinstance(value, (Detached, ModelFile)) else as_model(value)


def _session(value, model: onnx.ModelProto | None, exact: bool, label: str):
    """A session of ``value``: itself, a pending one's, or a new one (``model``: ``value`` loaded)."""
    if is_session(value):
        return value
    if isinstance(value, PendingSession):
        return value.result()
    if not isinstance(value, Detached):
        value = model if model is not None else as_model(value)
    return make_session(value, exact=exact, label=label)


def _data_shapes(feed: Mapping) -> ResolvedShapes:
    return ResolvedShapes({name: tuple(np.shape(value)) for name, value in feed.items()}, "data")


def validate(reference: ModelLike, candidate: ModelLike, *, data=None, samples: int | None = None,
             input_shapes: Mapping | None = None, rtol: float = 1e-4, atol: float = 1e-5, seed: int = 0,
             progress: bool = True, image_options: Mapping | None = None,
             rtol_of_scale: float | None = FOLD_RTOL_OF_SCALE, label: str | None = None,
             desc: str = "validating", exact: bool = True) -> ValidationReport:
    """Compare ``candidate`` with ``reference`` on ``data`` (or seeded random inputs).

    ``candidate`` may also be a session from :func:`~graphprune.validation.runner.make_session`,
    so that one model checked against two references is loaded into onnxruntime once. Either
    model may be a :class:`~graphprune.graph.detached.Detached` model, or a
    :class:`~graphprune.validation.runner.PendingSession` made while the caller worked.

    ``samples`` caps the number of feeds taken from ``data`` (None: all of them) and is the
    number of random feeds without data (None: 4). ``image_options`` are passed to
    :func:`graphprune.validation.load_inputs` for image folders (mean, std, size, layout,
    channel_order). Without data, dynamic input dims get sizes the model runs with (see
    :mod:`graphprune.validation.sizes`); ``report.inputs`` says which. Never raises for a
    mismatch: read ``.passed``. ``exact``: onnxruntime runs both models without graph optimizations
    (fused kernels change the last bits); False for a drift measurement, which is faster.
    """
    if rtol < 0 or atol < 0 or (rtol_of_scale is not None and rtol_of_scale < 0):
        raise UsageError(f"tolerances must be non-negative (rtol={rtol}, atol={atol}, rtol_of_scale={rtol_of_scale})")
    if samples is not None and samples < 1:
        raise UsageError(f"samples must be at least 1 (got {samples})")
    ref_label, cand_label = model_label(reference, "reference"), model_label(candidate, "candidate")
    if ref_label == cand_label:
        ref_label, cand_label = f"reference {ref_label}", f"candidate {cand_label}"
    ref_model = _inputs_model(reference)
    ref_sess = _session(reference, ref_model, exact, ref_label)
    cand_sess = _session(candidate, None, exact, cand_label)
    pairs, notes, complete = _match_outputs(output_names(ref_sess), output_names(cand_sess))
    accs = {r: OutputAccumulator(r, rtol=rtol, atol=atol, rtol_of_scale=rtol_of_scale) for r, _ in pairs}
    drift = DriftAccumulator([r for r, _ in pairs])
    ran = _ran_already(reference, data, samples, seed, input_shapes)
    feeds, data_label, resolved = ran or _feeds(ref_model, data, samples, seed, input_shapes, image_options)
    data_label = label or data_label
    count = 0
    for i, feed in enumerate(progress_bar(feeds, samples, progress, desc)):
        resolved = resolved or _data_shapes(feed)
        ref_out = reference.outputs()[i] if ran else run_session(ref_sess, feed, label=ref_label, sample=i)
        cand_out = run_session(cand_sess, feed, label=cand_label, sample=i)
        for r, c in pairs:
            accs[r].update(ref_out[r], cand_out[c])
        if complete:
            drift.update([ref_out[r] for r, _ in pairs], [cand_out[c] for _, c in pairs])
        count += 1
    if count == 0:
        raise UsageError(f"{data_label}: no samples to validate with")
    outputs = tuple(acc.result() for acc in accs.values())
    passed = complete and bool(outputs) and all(m.passed for m in outputs)
    report = ValidationReport(passed, outputs, count, rtol, atol, data_label, tuple(notes), rtol_of_scale, resolved,
                              drift.result() if complete and pairs else None)
    log.info("validation %s (worst output %s)", "passed" if passed else "failed", report.worst)
    return report


def progress_bar(feeds, samples, enabled: bool, desc: str = "validating"):
    total = len(feeds) if isinstance(feeds, list) else samples
    return progress_iter(feeds, total=total, desc=desc, enabled=enabled, unit="sample")
