"""One options value for every stage: what to remove, how to calibrate, how to check.

The Python API passes its keyword arguments straight to :class:`Options` (the CLI builds the
same keywords from its flags), so each option is defined and validated once, here; stages read
only the fields they need. ``plan_options`` is the planner's part, recorded in plan files.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import UsageError
from ..planning.config import load_overrides
from ..planning.options import PlanOptions
from ..vocabulary import DATA_DRIVEN, DEFAULT_CALIB_SAMPLES, DEFAULT_MAX_LENGTH, TEXT_SUFFIXES

#: the planner's options: keywords of :class:`Options` that go to its ``plan`` part
PLAN_FIELDS = frozenset(f.name for f in fields(PlanOptions))


@dataclass(frozen=True, init=False)
class Options:
    """Every option of ``prune``/``plan``/``apply``/``sensitivity``; see the CLI help of each flag.

    ``plan`` holds what to remove (:class:`PlanOptions`: ratio, importance, targets, limits...);
    its fields read through: ``options.ratio`` is ``options.plan.ratio``. Construct with flat
    keywords (``Options(ratio=0.5, calib="data.npz")``); ``config`` (a file of per-node
    overrides) is merged into ``plan.overrides``.
    """

    plan: PlanOptions
    # calibration and repair
    calib: object = None
    calib_samples: int | None = DEFAULT_CALIB_SAMPLES
    #: a tokenizer.json: ``calib`` is then a text file, one sentence per line
    tokenizer: object = None
    max_length: int = DEFAULT_MAX_LENGTH
    #: None: on for data-driven criteria
    compensate: bool | None = None
    refit: bool = False
    # preparation
    keep_bn: bool = False
    strict_initializer_inputs: bool = False
    # the checks of the result
    validate: bool = True
    data: object = None
    samples: int | None = None
    input_shapes: dict | None = None
    image_options: dict | None = None
    # running
    progress: bool = False
    latency_threads: int = 1
    count_macs: bool = True
    label: str | None = None

    def __init__(self, plan: PlanOptions | None = None, config=None, **keywords):
        unknown = sorted(set(keywords) - PLAN_FIELDS - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)} (see graphprune.pipeline.Options)")
        planned = {k: keywords.pop(k) for k in list(keywords) if k in PLAN_FIELDS}
        for name in ("exclude", "overrides"):
            if name in planned:
                planned[name] = tuple(planned[name])
        if plan is not None and planned:
            plan = replace(plan, **planned)
        plan = plan or PlanOptions(**planned)
        if config is not None:
            plan = replace(plan, overrides=tuple(plan.overrides) + load_overrides(config))
        object.__setattr__(self, "plan", plan)
        for f in fields(self):
            if f.name != "plan":
                object.__setattr__(self, f.name, keywords.get(f.name, f.default))
        self._resolve_repair()

    def _resolve_repair(self) -> None:
        compensate = self.plan.importance in DATA_DRIVEN if self.compensate is None else bool(self.compensate)
        if self.refit and not compensate and self.calib is None:
            raise UsageError("--refit needs calibration data: give it with --calib PATH")
        object.__setattr__(self, "compensate", compensate or bool(self.refit))
        check_calibration(self.plan.importance, self.calib, self.compensate)
        check_text_calibration(self.calib, self.tokenizer, self.max_length)

    def __getattr__(self, name: str):
        if name in PLAN_FIELDS:
            return getattr(self.plan, name)
        raise AttributeError(f"{type(self).__name__!r} has no option {name!r}")

    @classmethod
    def of(cls, **keywords) -> "Options":
        """Options from API keywords (an unknown keyword is a TypeError naming it)."""
        return cls(**keywords)

    @property
    def plan_options(self) -> PlanOptions:
        return self.plan

    @property
    def needs_calibration(self) -> bool:
        return self.plan.importance in DATA_DRIVEN or bool(self.compensate)


def check_calibration(importance: str, calib, compensate: bool) -> None:
    """A usage error (naming --calib) when data-driven scoring or compensation has no data."""
    if calib is not None:
        return
    if importance in DATA_DRIVEN:
        raise UsageError(f"--importance {importance} is data-driven: give calibration data with "
                         "--calib PATH (.npz, .npy or a folder of images)")
    if compensate:
        raise UsageError("--compensate needs calibration data: give it with --calib PATH")


def check_text_calibration(calib, tokenizer, max_length: int) -> None:
    """Usage errors of text calibration data: a text file needs a tokenizer (and the ``tokenizers``
    package), a tokenizer needs a text file."""
    from pathlib import Path

    is_path = isinstance(calib, (str, Path))
    if tokenizer is None:
        if is_path and Path(calib).suffix.lower() in TEXT_SUFFIXES:
            raise UsageError(f"--calib {calib} is a text file: give the tokenizer that reads it with "
                             "--tokenizer tokenizer.json")
        return
    if not is_path or Path(calib).is_dir() or Path(calib).suffix.lower() in (".npz", ".npy"):
        raise UsageError("--tokenizer reads a text file of sentences given with --calib (one per line); "
                         f"--calib is {calib if is_path else type(calib).__name__}")
    if not isinstance(max_length, int) or max_length < 2:
        raise UsageError(f"--max-length must be at least 2 (room for the special tokens), got {max_length}")
    from ..calibration.text import require_tokenizers

    require_tokenizers()
