"""The pruning pipeline: one small module per stage, each taking and returning plain values.

``load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check ─► save`` (see
:mod:`.values` for what flows between them and :mod:`.compose` for the commands built from them).
"""
from .options import Options  # noqa: F401
