"""One options value for every stage: what to remove, how to calibrate, how to check.

The Python API passes its keyword arguments straight to :class:`Options` (the CLI builds the
same keywords from its flags), so each option is defined and validated once, here; stages read
only the fields they need. ``plan_options`` is the planner's part, recorded in plan files.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import UsageError
from ..planning.config import load_overrides
from ..planning.options import PlanOptions
from ..vocabulary import DATA_DRIVEN, DEFAULT_CALIB_SAMPLES

#: the planner's options (a subset of the fields below)
_PLAN_FIELDS = tuple(f.name for f in fields(PlanOptions))


@dataclass(frozen=True)
class Options:
    """Every option of ``prune``/``plan``/``apply``/``sensitivity``; see the CLI help of each flag."""

    # what to remove (PlanOptions)
    ratio: float = 0.3
    importance: str = "l2"
    aggregate: str = "sum"
    global_rank: bool = False
    normalize: str = "mean"
    round_to: int = 1
    min_channels: int = 1
    max_ratio: float = 1.0
    exclude: tuple = ()
    overrides: tuple = ()
    target_macs: float | None = None
    target_params: float | None = None
    target_latency: float | None = None
    seed: int = 0
    #: a file of per-node overrides (.toml/.json), merged after ``overrides``
    config: object = None
    # calibration and repair
    calib: object = None
    calib_samples: int | None = DEFAULT_CALIB_SAMPLES
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

    def __post_init__(self):
        overrides = tuple(self.overrides) + (load_overrides(self.config) if self.config is not None else ())
        object.__setattr__(self, "overrides", overrides)
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "config", None)
        plan = self.plan_options  # validates the planner's options
        compensate = plan.importance in DATA_DRIVEN if self.compensate is None else bool(self.compensate)
        if self.refit and not compensate and self.calib is None:
            raise UsageError("--refit needs calibration data: give it with --calib PATH")
        object.__setattr__(self, "compensate", compensate or bool(self.refit))
        check_calibration(plan.importance, self.calib, self.compensate)

    @classmethod
    def of(cls, **keywords) -> "Options":
        """Options from API keywords; an unknown keyword is a usage error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)} (see graphprune.pipeline.Options)")
        return cls(**keywords)

    @property
    def plan_options(self) -> PlanOptions:
        return PlanOptions(**{name: getattr(self, name) for name in _PLAN_FIELDS})

    @property
    def needs_calibration(self) -> bool:
        return self.importance in DATA_DRIVEN or bool(self.compensate)


def check_calibration(importance: str, calib, compensate: bool) -> None:
    """A usage error (naming --calib) when data-driven scoring or compensation has no data."""
    if calib is not None:
        return
    if importance in DATA_DRIVEN:
        raise UsageError(f"--importance {importance} is data-driven: give calibration data with "
                         "--calib PATH (.npz, .npy or a folder of images)")
    if compensate:
        raise UsageError("--compensate needs calibration data: give it with --calib PATH")
