"""The pruning pipeline: one small module per stage, each taking and returning plain values.

``load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check ─► save`` (see
:mod:`.values` for what flows between them and :mod:`.compose` for the commands built from them)::

    from graphprune.pipeline import Options, load, prepare, analyze, score, decide, apply, check
    options = Options(ratio=0.5)
    source = load("model.onnx")
    analyzed = analyze(prepare(source, options), options)
    decided = decide(score(analyzed, options), options)
    pruned = apply(analyzed, decided.decision.removed, options, compensation=decided.compensation)
    checked = check(pruned, source, options)

With calibration data, ``split = compose.data_split(source, options)`` given to ``score`` and
``check`` (and ``feeds=compose.repair_feeds(split)`` to ``apply``) keeps the held-out samples
(``eval_split``) out of calibration and repairs, and checks on them.
"""
from .analyze import analyze  # noqa: F401
from .apply import apply  # noqa: F401
from .check import check  # noqa: F401
from .decide import decide  # noqa: F401
from .load import load  # noqa: F401
from .options import Options  # noqa: F401
from .prepare import prepare  # noqa: F401
from .score import score  # noqa: F401
from .values import Analyzed, Checked, Decided, Prepared, Pruned, Scored, Source  # noqa: F401
