"""Numbers in tables and reports: byte sizes and counts never in exponent form, 3 significant digits."""
from __future__ import annotations

import math

import pytest

from graphprune.profiling import profile
from graphprune.profiling.table import profile_lines
from graphprune.report import render
from graphprune.report.text import binary_bytes, nouns, num, si
from tests.helpers.paths import shared_model


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"),
    (1023, "1,023 B"),                # under 1 KiB: every byte
    (1024, "1 KiB"),
    (1536, "1.5 KiB"),
    (1_034_000, "1,010 KiB"),         # 1,034,000 / 1024 = 1009.77 -> 3 significant digits
    (2**20, "1 MiB"),
    (3_000_000_000, "2.79 GiB"),      # 3e9 / 2**30 = 2.794
    (5 * 2**40, "5 TiB"),
    (None, "-"),
])
def test_byte_sizes(size, text):
    assert binary_bytes(size) == text


@pytest.mark.parametrize(("count", "text"), [
    (0, "0"), (5, "5"), (999, "999"), (999.5, "1k"),      # 999.5 rounds to 1.00e3: the next prefix
    (291_256, "291k"), (999_999, "1M"),                    # not "1e+03k"
    (87_521_920, "87.5M"), (3_000_000_000, "3G"), (10**15, "1,000T"),
])
def test_counts(count, text):
    assert si(count) == text


@pytest.mark.parametrize(("value", "digits", "text"), [
    (123.4, 2, "120"),                # was 1.2e+02
    (1234.5, 3, "1,230"),
    (0.982199, 6, "0.982199"),
    (4.17e-07, 3, "4.17e-07"),        # tiny errors keep the exponent
    (1234567.0, 3, "1.23e+06"),       # and so do huge ones
    (math.nan, 3, "nan"), (None, 3, "-"),
])
def test_plain_numbers(value, digits, text):
    assert num(value, digits) == text


def test_profile_of_a_one_megabyte_model_prints_its_size_in_full():
    """fastestdet.onnx is 1,035,982 bytes = 1011.7 KiB: the profile table used to print 1.01e+03 KiB."""
    path = shared_model("fastestdet.onnx")
    assert path.stat().st_size == 1_035_982
    result = profile(str(path), progress=False)
    lines = profile_lines(result)
    assert "file 1,010 KiB" in lines[0]
    assert not [line for line in lines if "e+" in line]
    page = render({"profile": result}, "html")
    assert '<td class="t">file size</td><td>1,010 KiB</td>' in page


def test_a_count_agrees_with_its_noun():
    assert [nouns(n, "group") for n in (0, 1, 2, 1500)] == ["0 groups", "1 group", "2 groups", "1,500 groups"]
    assert nouns(1, "blocked group") == "1 blocked group"
