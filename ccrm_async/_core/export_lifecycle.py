"""The life of one export job, as a pure state machine: no clock, no I/O.

How a job lives
---------------

A job is created *pending*: CCRM builds the file and will POST a callback
naming it to the job's ``pushUrl``. Anyone who learns that URL (the token is
in it) can post a callback too, so a callback is a *claim* that a file is
ready, not a fact; the download is what checks it. The rules:

1. **Pending** until the deadline (an absolute time, seconds, on the
   receiver's clock). A callback before it starts a download of the file it
   names (*downloading*); the deadline passing first ends the job *timed
   out*. Its token then opens nothing: every later callback is answered like
   an unknown path.
2. **Downloading** one file. The same file id again is a repeat (answered
   200, nothing started). Another file id is *queued*, not refused: if it
   came from CCRM after a forged one, refusing it would lose the only genuine
   callback (CCRM does not retry a refused one). The deadline does not end a
   running download.
3. A download the storage **refuses** in a way a forged or stale callback
   explains (403, 404, 410) does not consume the job: the next queued file is
   tried, or the job is pending again until its deadline. Every download
   counts as a try, and a job makes at most :data:`MAX_TRIES` (5): the fifth
   refusal fails it, so that a token holder cannot keep a receiver busy for
   the whole deadline. A queued file counts against the limit when queued, so
   a callback that could never be tried is answered 409 at once.
4. A download that **fails** otherwise (too large, cut off after every
   retry, the disk full, a redirect away from the API) fails the job: a
   forged callback cannot cause those, and trying again would not help.
5. A download that **succeeds** ends the job *succeeded*. For
   ``replay_window`` seconds after, the same callback is still answered 200,
   so a sender retrying after a lost answer stops; after that, or for another
   file, the token opens nothing.
6. **Cancellation** ends a job that is not finished, whatever it is doing.

Each event is a method of :class:`Lifecycle` that returns the next value (and,
for a callback, the :class:`Verdict` to answer); an event that makes no sense
in the current state raises :class:`InvalidTransition`. The receiver owns the
clocks, the sockets and the files; it applies these and acts on the result.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = [
    "MAX_TRIES",
    "ExportStatus",
    "InvalidTransition",
    "Lifecycle",
    "Verdict",
]

#: Downloads one job may try (accepted callbacks naming distinct attempts).
MAX_TRIES = 5


class ExportStatus(StrEnum):
    """Where an export job stands."""

    PENDING = "pending"  # waiting for the callback
    DOWNLOADING = "downloading"  # callback accepted, file being fetched
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the download failed
    TIMED_OUT = "timed_out"  # no usable callback before the deadline
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (ExportStatus.PENDING, ExportStatus.DOWNLOADING)


class Verdict(StrEnum):
    """What a callback with a valid token gets (see :meth:`Lifecycle.callback`)."""

    START = "start"  # 200: download this file now
    QUEUED = "queued"  # 200: tried if the running download is refused
    REPEAT = "repeat"  # 200: already known; nothing to do
    CONFLICT = "conflict"  # 409: no try left for another file
    GONE = "gone"  # 404: the token opens nothing any more

    @property
    def status(self) -> int:
        """The HTTP status to answer."""
        return {Verdict.CONFLICT: 409, Verdict.GONE: 404}.get(self, 200)


class InvalidTransition(ValueError):
    """An event that cannot happen in the job's current state (a bug)."""


@attrs.frozen
class Lifecycle:
    """One job's state. Times are seconds on the receiver's clock.

    ``file_id`` is the file being (or last) downloaded; ``queued`` the files
    accepted while it ran, in order; ``tries`` the downloads started so far;
    ``refusal`` why the last download was refused (for the timeout message).
    """

    deadline_at: float
    status: ExportStatus = ExportStatus.PENDING
    file_id: str | None = None
    queued: tuple[str, ...] = ()
    tries: int = 0
    finished_at: float | None = None
    refusal: str | None = None

    # -- callbacks -----------------------------------------------------------

    def callback(
        self, file_id: str, now: float, *, replay_window: float
    ) -> tuple[Lifecycle, Verdict]:
        """A callback with a valid token names *file_id* at *now*."""
        status = self.status
        if status is ExportStatus.PENDING:
            if now >= self.deadline_at:
                return self, Verdict.GONE
            return self._start(file_id), Verdict.START
        if status is ExportStatus.DOWNLOADING:
            if file_id == self.file_id or file_id in self.queued:
                return self, Verdict.REPEAT
            if self.tries + len(self.queued) >= MAX_TRIES:
                return self, Verdict.CONFLICT
            return attrs.evolve(self, queued=(*self.queued, file_id)), Verdict.QUEUED
        if status is ExportStatus.SUCCEEDED and self.replays(file_id, now, replay_window):
            return self, Verdict.REPEAT
        return self, Verdict.GONE

    def open(self, now: float, *, replay_window: float) -> bool:
        """Whether the token still opens anything at *now* (checked before the
        body is read: a closed job answers like an unknown path)."""
        if self.status is ExportStatus.PENDING:
            return now < self.deadline_at
        if self.status is ExportStatus.DOWNLOADING:
            return True
        if self.status is ExportStatus.SUCCEEDED:
            return self.finished_at is not None and now - self.finished_at <= replay_window
        return False

    def replays(self, file_id: str, now: float, replay_window: float) -> bool:
        """Whether *file_id* repeats the successful callback within the window."""
        return (
            self.status is ExportStatus.SUCCEEDED
            and file_id == self.file_id
            and self.open(now, replay_window=replay_window)
        )

    # -- the deadline ----------------------------------------------------------

    def expire(self, now: float) -> Lifecycle:
        """The deadline timer fired at *now*: a pending job past its deadline
        times out; anything else is unchanged (a download runs on)."""
        if self.status is ExportStatus.PENDING and now >= self.deadline_at:
            return self._end(ExportStatus.TIMED_OUT, now)
        return self

    # -- downloads ---------------------------------------------------------------

    def downloaded(self, now: float) -> Lifecycle:
        """The running download succeeded."""
        self._require(ExportStatus.DOWNLOADING, "downloaded")
        return attrs.evolve(self._end(ExportStatus.SUCCEEDED, now), queued=())

    def refused(self, now: float, why: str) -> Lifecycle:
        """The storage refused the running download in a way a forged or stale
        callback explains (403, 404, 410): try the next queued file, or wait
        again until the deadline; the last try fails the job."""
        self._require(ExportStatus.DOWNLOADING, "refused")
        if self.queued:
            nxt, rest = self.queued[0], self.queued[1:]
            return attrs.evolve(self._start(nxt), queued=rest, refusal=why)
        if self.tries >= MAX_TRIES:
            return attrs.evolve(self._end(ExportStatus.FAILED, now), refusal=why)
        if now >= self.deadline_at:
            return attrs.evolve(self._end(ExportStatus.TIMED_OUT, now), refusal=why)
        return attrs.evolve(self, status=ExportStatus.PENDING, file_id=None, refusal=why)

    def failed(self, now: float) -> Lifecycle:
        """The running download failed for a reason no callback explains."""
        self._require(ExportStatus.DOWNLOADING, "failed")
        return attrs.evolve(self._end(ExportStatus.FAILED, now), queued=())

    # -- cancellation --------------------------------------------------------------

    def cancel(self, now: float) -> Lifecycle:
        """Cancelled by its owner."""
        if self.status.finished:
            raise InvalidTransition(f"cannot cancel a job that is {self.status.value}")
        return attrs.evolve(self._end(ExportStatus.CANCELLED, now), queued=())

    # -- helpers -----------------------------------------------------------------------

    def _start(self, file_id: str) -> Lifecycle:
        return attrs.evolve(
            self, status=ExportStatus.DOWNLOADING, file_id=file_id, tries=self.tries + 1
        )

    def _end(self, status: ExportStatus, now: float) -> Lifecycle:
        return attrs.evolve(self, status=status, finished_at=now)

    def _require(self, status: ExportStatus, event: str) -> None:
        if self.status is not status:
            raise InvalidTransition(f"{event}: the job is {self.status.value}, not {status.value}")
