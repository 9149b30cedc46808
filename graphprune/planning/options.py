"""What the user asks the planner for (validated once, recorded in the plan file)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import UsageError
from ..importance import AGGREGATES, check_importance
from .config import Override, check_fraction, check_positive_int

from ..vocabulary import NORMALIZERS, TARGET_KINDS  # noqa: F401 - re-exported


@dataclass(frozen=True)
class PlanOptions:
    """Options of ``graphprune plan`` (and ``prune``); see the CLI help for each one."""

    ratio: float = 0.3
    importance: str = "l2"
    aggregate: str = "sum"
    global_rank: bool = False
    normalize: str = "mean"
    round_to: int = 1
    min_channels: int = 1
    max_ratio: float = 1.0
    exclude: tuple = ()
    overrides: tuple = field(default_factory=tuple)
    target_macs: float | None = None
    target_params: float | None = None
    target_latency: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_fraction("--ratio", self.ratio)
        check_importance(self.importance)
        if self.aggregate not in AGGREGATES:
            raise UsageError(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        if self.normalize not in NORMALIZERS:
            raise UsageError(f"--normalize must be one of {', '.join(NORMALIZERS)}, got {self.normalize!r}")
        check_positive_int("--round-to", self.round_to)
        check_positive_int("--min-channels", self.min_channels)
        check_fraction("--max-ratio", self.max_ratio, upper_open=False)
        targets = [k for k in TARGET_KINDS if getattr(self, f"target_{k}") is not None]
        if len(targets) > 1:
            raise UsageError(f"give one target, not {len(targets)} (--target-{' and --target-'.join(targets)})")
        for kind in targets:
            value = getattr(self, f"target_{kind}")
            if not (0.0 < float(value) <= 1.0):
                raise UsageError(f"--target-{kind} is the fraction of the original to keep, in (0, 1]; "
                                 f"got {value:g}")
        if not all(isinstance(o, Override) for o in self.overrides):
            raise UsageError("overrides must be Override objects (see graphprune.planning.config)")

    @property
    def target(self) -> tuple[str, float] | None:
        for kind in TARGET_KINDS:
            value = getattr(self, f"target_{kind}")
            if value is not None:
                return kind, float(value)
        return None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["exclude"] = list(self.exclude)
        out["overrides"] = [o.to_dict() for o in self.overrides]
        return out
