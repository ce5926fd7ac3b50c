"""Issue #11's scale target: 5,000 streams open at once through one worker, under 1 GiB, all finished.

It runs bench/streams.py's measurement (separate emulator and gateway processes, a slow upstream)
with the full count; TOROUTER_STREAMS overrides it for a quicker local run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import streams

pytestmark = pytest.mark.slow


def test_thousands_of_open_streams_fit_in_a_gibibyte_and_all_finish() -> None:
    count = int(os.environ.get("TOROUTER_STREAMS", "5000"))
    report = streams.run(count, seconds=45.0, budget_mib=1024.0)
    print("\n".join(report.lines()))
    assert report.failed == 0, report.errors
    assert report.finished == count
    assert report.peak_open == count, "the streams were never all open at the same time"
    assert report.peak_rss_mib < 1024, report.lines()
