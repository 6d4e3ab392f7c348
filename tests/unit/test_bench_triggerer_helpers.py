"""The pure helpers of the real-triggerer benchmark (benchmarks/triggerer_scale.py).

The benchmark itself needs .venv-bench and minutes of a real triggerer; these are the arithmetic
its figures rest on.
"""

from __future__ import annotations

import pytest
from benchmarks.triggerer_scale import (
    percentile,
    planned_duration,
    poll_intervals,
    run_id_of_path,
    stalls_in_log,
)


def test_percentile_is_nearest_rank_and_none_when_empty() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.99) == 5.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([], 0.5) is None


def test_run_id_of_path_reads_immuta_and_dbt_paths() -> None:
    assert run_id_of_path("/api/connections/c/tasks/t-1/runs/r-9") == "r-9"
    assert run_id_of_path("/api/v2/accounts/1/runs/42/") == "42"


@pytest.mark.parametrize(
    ("batch", "elapsed", "expected"),
    [(0, 0.0, 100.0), (4, 10.0, 150.0), (2, 5.0, 125.0)],
)
def test_planned_duration_spreads_ends_and_subtracts_creation_time(
    batch: int, elapsed: float, expected: float
) -> None:
    # five batches ending at 100, 115, 130, 145, 160 s after the first was made
    assert planned_duration(batch, 5, elapsed, 100.0, 60.0) == pytest.approx(expected)


def test_planned_duration_is_never_below_one_second() -> None:
    assert planned_duration(0, 1, 500.0, 10.0, 0.0) == 1.0


def test_poll_intervals_only_after_the_takeover() -> None:
    times = [0.0, 30.0, 60.0, 75.0, 105.0, 135.0]
    assert poll_intervals(times, 70.0) == [30.0, 30.0]
    assert poll_intervals(times, 200.0) == []


def test_stalls_in_log_reads_airflows_loop_warnings() -> None:
    text = (
        "[info] Triggerer's async thread was blocked for 0.21 seconds, exceeding ...\n"
        "[info] Triggerer's async thread was blocked for 6.43 seconds, exceeding ...\n"
        "[error] TriggerRunner subprocess event loop appears deadlocked: no communication ...\n"
    )
    assert stalls_in_log(text) == {
        "loop_blocks": 2,
        "longest_loop_block_s": 6.43,
        "runner_silent_30s": 1,
    }
    assert stalls_in_log("") == {
        "loop_blocks": 0,
        "longest_loop_block_s": 0.0,
        "runner_silent_30s": 0,
    }
