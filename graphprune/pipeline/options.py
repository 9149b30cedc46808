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
from ..vocabulary import DATA_DRIVEN, DEFAULT_CALIB_SAMPLES, DEFAULT_REPAIR, parse_repair

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
    #: repairs by name (``"mean,statistics"``, ``"all"``, ``"none"`` or a sequence); None: the default
    #: combination with calibration data, none without. Resolved to a tuple of names in running order
    repair: object = None
    #: older spellings of ``repair`` (compensate=True is "mean", refit=True "refit", compensate=False
    #: "none"); once resolved they say whether the repair includes mean compensation / the re-fit
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
        methods = resolve_repair(self.repair, self.compensate, self.refit, self.calib, self.plan.importance)
        object.__setattr__(self, "repair", methods)
        # the older spellings now say what the repair does (``replace(options, ...)`` resolves the same)
        object.__setattr__(self, "compensate", bool({"mean", "refit"} & set(methods)))
        object.__setattr__(self, "refit", "refit" in methods)
        check_calibration(self.plan.importance, self.calib, methods)

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
    def mean_repair(self) -> str | None:
        """``"refit"`` or ``"mean"`` when the decision carries compensation data, else None."""
        return next((m for m in ("refit", "mean") if m in self.repair), None)

    @property
    def needs_calibration(self) -> bool:
        """Whether scoring or the decision's repair data (mean, refit) needs calibration statistics."""
        return self.plan.importance in DATA_DRIVEN or self.mean_repair is not None


def resolve_repair(repair, compensate: bool | None, refit: bool, calib, importance: str) -> tuple[str, ...]:
    """The repairs to run, in running order, from ``repair`` or its older spellings.

    Without either: the default combination when there is calibration data (mean compensation alone
    for a data-driven criterion given no data, which then fails with a usage error), none otherwise.
    Older spellings given with ``repair`` must agree with it.
    """
    if repair is not None:
        try:
            methods = parse_repair(repair)
        except ValueError as exc:
            raise UsageError(f"--repair: {exc}") from None
        means = bool({"mean", "refit"} & set(methods))
        if (compensate is not None and compensate != means) or (refit and "refit" not in methods):
            raise UsageError("give --repair or --compensate/--no-compensate/--refit, not both")
        return methods
    if refit:
        if compensate is False:
            raise UsageError("--refit compensates by construction; drop --no-compensate")
        return ("refit",)
    if compensate is not None:
        return ("mean",) if compensate else ()
    if calib is not None:
        return DEFAULT_REPAIR
    return ("mean",) if importance in DATA_DRIVEN else ()


def check_calibration(importance: str, calib, repair) -> None:
    """A usage error (naming --calib) when data-driven scoring or a repair has no data."""
    if calib is not None:
        return
    if importance in DATA_DRIVEN:
        raise UsageError(f"--importance {importance} is data-driven: give calibration data with "
                         "--calib PATH (.npz, .npy or a folder of images)")
    if repair:
        flag = "--refit" if "refit" in repair else "--compensate" if repair == ("mean",) else f"--repair {','.join(repair)}"
        raise UsageError(f"{flag} needs calibration data: give it with --calib PATH")
