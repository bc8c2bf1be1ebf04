"""The SDK's pure parts: the event cursor's verdicts and the reconnect backoff."""

from __future__ import annotations

import random

import pytest

from wanglai.client.backoff import Backoff
from wanglai.client.ordering import Cursor, Verdict


def test_cursor_delivers_the_next_seq_drops_old_ones_and_flags_gaps() -> None:
    cursor = Cursor(5)
    assert cursor.offer(6) is Verdict.DELIVER
    assert cursor.offer(6) is Verdict.DUPLICATE
    assert cursor.offer(3) is Verdict.DUPLICATE
    assert cursor.offer(9) is Verdict.GAP
    assert cursor.seq == 6  # a gap does not move the cursor: sync fills it first
    assert cursor.offer(7) is Verdict.DELIVER and cursor.seq == 7


def test_cursor_takes_sync_pages_once() -> None:
    cursor = Cursor()
    assert [s for s in (1, 2, 2, 4, 3) if cursor.advance(s)] == [1, 2, 4]
    assert cursor.seq == 4


def test_cursor_refuses_a_negative_start() -> None:
    with pytest.raises(ValueError):
        Cursor(-1)


def test_backoff_grows_is_bounded_and_jittered() -> None:
    backoff = Backoff(low=0.1, high=5.0, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(40)]
    assert all(0.05 <= d <= 5.0 for d in delays)
    assert delays[0] <= 0.1 and max(delays[-10:]) > 2.5
    assert all(2.5 <= d <= 5.0 for d in delays[10:])  # capped: never beyond high
    assert len({round(d, 6) for d in delays[10:]}) > 1  # jittered: not in lockstep
