"""Every covered model prunes, folds and plans to the reference bytes (see check.py)."""
from __future__ import annotations

import pytest

from tests.regression.check import cases, load_reference, run_case

REFERENCE = load_reference()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.key)
def test_output_bytes_match_reference(case, tmp_path):
    assert case.key in REFERENCE, f"{case.key} has no reference: run python -m tests.regression.check --update"
    digest = run_case(case, tmp_path)
    if digest is None:
        pytest.skip(f"model of {case.key} not found (expected in ../shared/models/)")
    assert digest == REFERENCE[case.key]
