"""The keys a pull yielded: exact whether held in memory or moved to disk."""

from __future__ import annotations

from ccrm_async._seen import SeenKeys


def test_keys_are_admitted_once_in_memory_and_on_disk() -> None:
    seen = SeenKeys(memory_keys=3)
    try:
        assert seen.admit(["a", "b", "a"]) == [True, True, False]
        assert seen.on_disk == 0
        assert seen.admit(["c", "d", "b"]) == [True, True, False]  # 4 held: moved to disk
        assert seen.on_disk == 4 and len(seen) == 4
        assert seen.admit(["a", "e", "e", "d"]) == [False, True, False, False]
        assert seen.admit([f"k{i}" for i in range(1200)]) == [True] * 1200  # > one query
        assert seen.admit(["k0", "k1199", "e", "z"]) == [False, False, False, True]
        assert len(seen) == 1206
    finally:
        seen.close()
