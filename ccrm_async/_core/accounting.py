"""Counting what a pull bent, rejected and may have missed (pure: no I/O).

- :class:`BentTally`: values bent to fit, per field path; tells which paths are
  new, so that each is logged once per pull.
- :class:`PassTally` and :func:`suspected_misses`: what one pass over a paged
  endpoint saw, and how many records it may have skipped.
- :func:`needs_repair`: whether the engine reads the range once more.

How a pass can miss records: the API pages a list that changes while it is
read. A deletion moves records into pages already fetched (the total falls);
an insertion, with pages fetched concurrently, lets a page answered after it
sit before a page answered before it, skipping the records between them (the
total rises, and fewer records than expected were read). So a pass is known
complete only when the records it read, less those inserted while it ran,
cover the total it ended with and no deletion was seen. Without any total
(the API left ``totalCount`` out) a pass is trusted unless pages overlapped.
"""

from __future__ import annotations

import attrs

__all__ = ["MAX_REPAIR_PASSES", "BentTally", "PassTally", "needs_repair", "suspected_misses"]

#: Passes read after the first one, at most, to repair suspected misses.
MAX_REPAIR_PASSES = 3


@attrs.define
class BentTally:
    """Bent values per field path (``to.number``, ``flags[]``, ``body``)."""

    paths: dict[str, int] = attrs.field(factory=dict)

    @property
    def total(self) -> int:
        return sum(self.paths.values())

    def add(self, path: str, count: int = 1) -> bool:
        """Count *count* bent values at *path*; True when the path is new."""
        known = self.paths.get(path)
        self.paths[path] = (known or 0) + count
        return known is None


@attrs.define
class PassTally:
    """One pass: ``read`` distinct records (readable or rejected, new or not),
    ``duplicates`` records met twice within the pass, and the totals stated
    by the answers in the order they arrived."""

    read: int = 0
    duplicates: int = 0
    total_first: int | None = None
    total_last: int | None = None
    inserted: int = 0
    deleted: int = 0

    def observe_total(self, total: int | None) -> None:
        """Note an answer's ``totalCount`` (None when it had none)."""
        if total is None:
            return
        if self.total_last is None:
            self.total_first = total
        elif total > self.total_last:
            self.inserted += total - self.total_last
        elif total < self.total_last:
            self.deleted += self.total_last - total
        self.total_last = total

    @property
    def drift(self) -> bool:
        """True when the data changed while the pass ran."""
        return bool(self.inserted or self.deleted or self.duplicates)


def suspected_misses(tally: PassTally) -> int:
    """Records the pass may have skipped; 0 means it is known complete.

    With totals: the larger of the deletions seen and the gap between the last
    total, less the insertions, and the records read. Without any total: the
    records met twice (pages overlapped, so others may have been skipped).
    """
    if tally.total_last is None:
        return tally.duplicates
    gap = tally.total_last - tally.inserted - tally.read
    return max(tally.deleted, gap, 0)


def needs_repair(misses: int, repair_passes: int, *, limit: int = MAX_REPAIR_PASSES) -> bool:
    """True when a pass that ended with *misses* suspected misses is followed
    by another, *repair_passes* having been read already (at most *limit*)."""
    return misses > 0 and repair_passes < limit
