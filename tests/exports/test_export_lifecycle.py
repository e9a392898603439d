"""The export job's state machine, pure: every transition, table-driven."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from ccrm_async._core.export_lifecycle import (
    MAX_TRIES,
    ExportStatus,
    InvalidTransition,
    Lifecycle,
    Verdict,
)

P, D, S = ExportStatus.PENDING, ExportStatus.DOWNLOADING, ExportStatus.SUCCEEDED
F, T, C = ExportStatus.FAILED, ExportStatus.TIMED_OUT, ExportStatus.CANCELLED
DEADLINE = 100.0
WINDOW = 10.0

PENDING = Lifecycle(deadline_at=DEADLINE)
DOWNLOADING = Lifecycle(deadline_at=DEADLINE, status=D, file_id="a", tries=1)
QUEUED = attrs.evolve(DOWNLOADING, queued=("b",))
LAST_TRY = attrs.evolve(DOWNLOADING, tries=MAX_TRIES)
FULL = attrs.evolve(DOWNLOADING, queued=tuple("bcde"[: MAX_TRIES - 1]))
SUCCEEDED = Lifecycle(deadline_at=DEADLINE, status=S, file_id="a", tries=1, finished_at=50.0)
ENDED = {
    status: Lifecycle(deadline_at=DEADLINE, status=status, file_id="a", tries=1, finished_at=50.0)
    for status in (F, T, C)
}


# -- callbacks: (state, file id, now) -> (status, file id, queued, tries, verdict) --

CALLBACKS = [
    ("pending, in time", PENDING, "a", 10.0, (D, "a", (), 1), Verdict.START),
    ("pending, at the deadline", PENDING, "a", DEADLINE, (P, None, (), 0), Verdict.GONE),
    ("downloading, the same file", DOWNLOADING, "a", 10.0, (D, "a", (), 1), Verdict.REPEAT),
    ("downloading, another file", DOWNLOADING, "b", 10.0, (D, "a", ("b",), 1), Verdict.QUEUED),
    ("downloading, a queued file", QUEUED, "b", 10.0, (D, "a", ("b",), 1), Verdict.REPEAT),
    (
        "downloading, past the deadline",
        DOWNLOADING,
        "b",
        500.0,
        (D, "a", ("b",), 1),
        Verdict.QUEUED,
    ),
    ("downloading, no try left", FULL, "z", 10.0, (D, "a", FULL.queued, 1), Verdict.CONFLICT),
    ("succeeded, a replay", SUCCEEDED, "a", 55.0, (S, "a", (), 1), Verdict.REPEAT),
    ("succeeded, after the window", SUCCEEDED, "a", 61.0, (S, "a", (), 1), Verdict.GONE),
    ("succeeded, another file", SUCCEEDED, "b", 55.0, (S, "a", (), 1), Verdict.GONE),
    ("failed", ENDED[F], "a", 55.0, (F, "a", (), 1), Verdict.GONE),
    ("timed out", ENDED[T], "a", 55.0, (T, "a", (), 1), Verdict.GONE),
    ("cancelled", ENDED[C], "a", 55.0, (C, "a", (), 1), Verdict.GONE),
]


@pytest.mark.parametrize(
    ("state", "file_id", "now", "after", "verdict"),
    [case[1:] for case in CALLBACKS],
    ids=[case[0] for case in CALLBACKS],
)
def test_callback(
    state: Lifecycle,
    file_id: str,
    now: float,
    after: tuple[ExportStatus, str | None, tuple[str, ...], int],
    verdict: Verdict,
) -> None:
    result, answered = state.callback(file_id, now, replay_window=WINDOW)
    assert (result.status, result.file_id, result.queued, result.tries) == after
    assert answered is verdict
    # The token opens the door exactly when the answer is not "gone".
    assert state.open(now, replay_window=WINDOW) == (
        verdict is not Verdict.GONE or (state.status is S and file_id != state.file_id)
    )


def test_verdict_statuses() -> None:
    assert {v: v.status for v in Verdict} == {
        Verdict.START: 200,
        Verdict.QUEUED: 200,
        Verdict.REPEAT: 200,
        Verdict.CONFLICT: 409,
        Verdict.GONE: 404,
    }


# -- the other events: (state, event, now) -> status or InvalidTransition ------------

Event = Callable[[Lifecycle, float], Lifecycle]
EVENTS: dict[str, Event] = {
    "expire": lambda s, now: s.expire(now),
    "downloaded": lambda s, now: s.downloaded(now),
    "refused": lambda s, now: s.refused(now, "404"),
    "failed": lambda s, now: s.failed(now),
    "cancel": lambda s, now: s.cancel(now),
}
STATES = {
    "pending": PENDING,
    "downloading": DOWNLOADING,
    "downloading+queued": QUEUED,
    "downloading, last try": LAST_TRY,
    "succeeded": SUCCEEDED,
    **{status.value: state for status, state in ENDED.items()},
}
# Before the deadline (now=10) and after it (now=500).
TABLE: dict[tuple[str, str], tuple[ExportStatus | None, ExportStatus | None]] = {
    ("pending", "expire"): (P, T),
    ("pending", "downloaded"): (None, None),
    ("pending", "refused"): (None, None),
    ("pending", "failed"): (None, None),
    ("pending", "cancel"): (C, C),
    ("downloading", "expire"): (D, D),
    ("downloading", "downloaded"): (S, S),
    ("downloading", "refused"): (P, T),
    ("downloading", "failed"): (F, F),
    ("downloading", "cancel"): (C, C),
    ("downloading+queued", "expire"): (D, D),
    ("downloading+queued", "downloaded"): (S, S),
    ("downloading+queued", "refused"): (D, D),
    ("downloading+queued", "failed"): (F, F),
    ("downloading+queued", "cancel"): (C, C),
    ("downloading, last try", "refused"): (F, F),
    ("downloading, last try", "downloaded"): (S, S),
}
for _name in ("succeeded", "failed", "timed_out", "cancelled"):
    TABLE[(_name, "expire")] = (STATES[_name].status, STATES[_name].status)
    for _event in ("downloaded", "refused", "failed", "cancel"):
        TABLE[(_name, _event)] = (None, None)
CASES = [
    (state, event, now, expected[i])
    for (state, event), expected in TABLE.items()
    for i, now in enumerate((10.0, 500.0))
]


def test_the_table_covers_every_state_and_event() -> None:
    core = {name for name in STATES if name != "downloading, last try"}
    assert {(s, e) for s in core for e in EVENTS} <= set(TABLE)


@pytest.mark.parametrize(
    ("state", "event", "now", "expected"),
    CASES,
    ids=[f"{s}-{e}-{'late' if now > DEADLINE else 'early'}" for s, e, now, _ in CASES],
)
def test_transition(state: str, event: str, now: float, expected: ExportStatus | None) -> None:
    before = STATES[state]
    if expected is None:
        with pytest.raises(InvalidTransition):
            EVENTS[event](before, now)
        return
    after = EVENTS[event](before, now)
    assert after.status is expected
    if expected.finished and not before.status.finished:
        assert after.finished_at == now and after.queued == ()
    if expected is P:
        assert after.file_id is None and after.tries == before.tries
    if event == "refused":
        assert after.refusal == "404"


def test_a_refusal_starts_the_next_queued_file_as_a_new_try() -> None:
    queued = attrs.evolve(DOWNLOADING, queued=("b", "c"))
    after = queued.refused(10.0, "403")
    assert (after.status, after.file_id, after.queued, after.tries) == (D, "b", ("c",), 2)


def test_a_forged_file_then_the_genuine_one() -> None:
    state, verdict = PENDING.callback("forged", 1.0, replay_window=WINDOW)
    assert verdict is Verdict.START
    state = state.refused(2.0, "404")
    assert state.status is P and state.deadline_at == DEADLINE  # same deadline
    state, verdict = state.callback("genuine", 3.0, replay_window=WINDOW)
    assert verdict is Verdict.START and state.tries == 2
    assert state.downloaded(4.0).status is S


def test_at_most_max_tries_downloads() -> None:
    state = PENDING
    for n in range(MAX_TRIES):
        state, verdict = state.callback(f"f{n}", 1.0, replay_window=WINDOW)
        assert verdict is Verdict.START
        state = state.refused(1.0, "404")
    assert state.status is F and state.tries == MAX_TRIES == 5
