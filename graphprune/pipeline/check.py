"""Stage ``check``: the pruned model against its oracle (must match) and against the original (drift).

The oracle is the prepared model with every removed slot's consumer slices zeroed: the pruned
model must compute what it computes, up to float summation order. Drift is informative: how far
the outputs moved from the original's, on the user's data or seeded random inputs.
"""
from __future__ import annotations

from ..errors import ValidationFailed
from .options import Options
from .values import Checked, Gate, Pruned, Source

#: the pruned model must match its oracle to this tolerance: dropping zero terms only changes
#: float summation order
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5
#: ... or, output by output, to this fraction of the output's largest magnitude (max |c - r| / max |r|):
#: in a deep network the summation-order noise of float32 grows with the activations (a 100-layer
#: detector on random inputs reaches ~1e-5 of its output scale), while a wrong channel shows at 1e-2
ORACLE_SCALE_RTOL = 1e-4
#: the original's session is made beside the pruning for models up to this size (its weights are
#: read and onnxruntime's copy is made while the pruning holds its own)
EARLY_SESSION_BYTES = 2**30


def check(pruned: Pruned, source: Source, options: Options, split=None, original=None) -> Checked:
    """``split`` (a :class:`~graphprune.validation.split.DataSplit`): the drift is measured on its
    held-out samples (or ``--data``), never on calibration samples; without it, on ``options.data``
    or seeded random inputs. With ``max_drift``, the drift is also compared with the budget.
    ``original``: the original's session, made while the model was pruned (:func:`original_session`)."""
    from ..graph.detached import detach, detach_proto
    from ..validation import validate
    from ..validation.compare import pending_reference
    from ..validation.remembered import RememberedRuns
    from ..validation.runner import make_session

    # the oracle's session is made and run on a worker while the pruned model's is made here; neither
    # is optimized by onnxruntime, so the oracle comparison is exact; one session serves both checks.
    # The oracle's runs may take every core but do not spin: the original's worker holds one core
    # until its runs end, then the oracle's take both (ResNet-50: 0.93x the whole prune)
    oracle_samples = options.samples or 2
    oracle_session = pending_reference(pruned.oracle_reference, exact=True, label="oracle model",
                                       samples=oracle_samples, seed=options.seed,
                                       input_shapes=options.input_shapes, spin=False)
    data, label, samples = options.data, None, options.samples
    if split is not None and split.check_data() is not None:
        data, label, samples = split.check_data(), split.label, None if split.data is None else options.samples
    # without data the drift's first feeds are the oracle's: their runs are not made twice
    # (validation.remembered)
    candidate = RememberedRuns(make_session(detach(pruned.model), exact=True, label="pruned model"),
                               oracle_samples if data is None else 0)
    oracle = validate(oracle_session, candidate, samples=oracle_samples,
                      input_shapes=options.input_shapes, seed=options.seed, rtol=ORACLE_RTOL, atol=ORACLE_ATOL,
                      rtol_of_scale=ORACLE_SCALE_RTOL, progress=options.progress)
    # the oracle's session holds onnxruntime's copy of every weight and the zeroed copies: let it go
    # before the original's session is made below (bench_memory --checks: 16.4 -> 11.8 GB at peak, with the
    # detached original below, on 2.4 GB of weights)
    del oracle_session
    if not oracle.passed:
        raise ValidationFailed("internal consistency check failed: the pruned model does not compute what the "
                               "original computes without the removed channels; nothing was written "
                               "(please report this model)")
    # a model whose session was not made during the pruning reaches onnxruntime detached too (its
    # weights as arrays: no serialized copy, and no temporary file above 2 GB)
    drift = validate(original or detach_proto(source.proto), candidate, data=data, samples=samples,
                     input_shapes=options.input_shapes, seed=options.seed, progress=options.progress,
                     image_options=options.image_options, label=label,
                     desc="final check" if options.max_drift is not None else "validating", exact=False)
    return Checked(oracle, drift, gate(drift, options) if options.max_drift is not None else None)


def original_session(source: Source, options: Options):
    """The original's session for the drift check, started now on a worker thread so that it is
    made while the model is pruned (on one core: the pruning uses the other); without data it also
    runs the seeded random inputs the drift is measured on.

    None without checks, or for a model whose weights exceed :data:`EARLY_SESSION_BYTES`: its
    session waits for the check, so that it never adds to the pruning's peak memory."""
    if not options.validate:
        return None
    from ..io import model_byte_size
    from ..validation.compare import pending_reference
    from ..validation.runner import PendingSession

    if model_byte_size(source.proto) > EARLY_SESSION_BYTES:
        return None
    # onnxruntime reads the model's file itself when it holds the model as loaded: no copy of the
    # weights is made here, and the pruning keeps the interpreter's lock (ResNet-50: 0.90x the whole prune)
    model = source.file or source.proto
    if options.data is not None or options.calib is not None:  # the drift is measured on the user's data
        return PendingSession(model, exact=False, label="original model", threads=1)
    return pending_reference(model, exact=False, label="original model", samples=options.samples,
                             seed=options.seed, input_shapes=options.input_shapes, threads=1)


def gate(report, options: Options) -> Gate:
    """The drift of ``report`` (the original against the written model) against ``--max-drift``."""
    value = report.drift.require(options.metric) if report.drift is not None else float("inf")
    return Gate(options.metric, float(options.max_drift), float(value), report.samples, report.data)
