"""The SDK's adaptive heartbeat: longer while pings are answered, back off below a NAT's
timeout once a connection died there."""

from __future__ import annotations

from wanglai.client.heartbeat import AdaptiveHeartbeat


def test_grows_while_answered_up_to_the_server_maximum() -> None:
    beat = AdaptiveHeartbeat(60, 600, growth=2, confirm=1)
    seen = []
    for _ in range(6):
        seen.append(beat.interval)
        beat.answered()
    assert seen == [60, 120, 240, 480, 600, 600]


def test_needs_confirmations_before_growing() -> None:
    beat = AdaptiveHeartbeat(60, 600, growth=2, confirm=3)
    beat.answered()
    beat.answered()
    assert beat.interval == 60
    beat.answered()
    assert beat.interval == 120


def test_a_death_sets_a_ceiling_and_returns_to_the_last_good_interval() -> None:
    beat = AdaptiveHeartbeat(60, 1200, growth=2, confirm=1)
    beat.answered()  # 60 ok -> 120
    beat.answered()  # 120 ok -> 240
    beat.answered()  # 240 ok -> 480
    beat.lost()  # the NAT dropped it at 480
    assert (beat.interval, beat.ceiling) == (240, 480)
    beat.answered()  # 240 ok -> half-way to the ceiling
    assert beat.interval == 360
    beat.answered()  # 360 ok -> 420
    beat.answered()  # 420 ok -> 450
    beat.lost()  # the NAT forgets after 440 s, say
    assert (beat.interval, beat.ceiling) == (420, 450)
    for _ in range(5):
        beat.answered()
    assert beat.interval == 420  # within 10% of the ceiling: it stays, never tries 450 again


def test_a_death_at_a_proven_interval_backs_off() -> None:
    beat = AdaptiveHeartbeat(60, 600, growth=2, confirm=1)
    beat.answered()  # 60 -> 120
    beat.lost()  # 120 not answered yet: ceiling
    assert beat.interval == 60
    beat.lost()  # died at 60, which had worked: back off, never under the server's interval
    assert beat.interval == 60 and beat.good == 60


def test_bounds_from_the_server_clamp_the_interval() -> None:
    beat = AdaptiveHeartbeat(60, 600, growth=2, confirm=1)
    for _ in range(5):
        beat.answered()
    assert beat.interval == 600
    beat.bounds(30, 300)
    assert beat.interval == 300 and beat.good <= 300
    beat.bounds(0, 0)
    assert beat.low == 1 and beat.high == 1 and beat.interval == 1
