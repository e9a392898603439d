"""Where a call record's parsing time goes: CPU only, no network (``make bench-converter``).

Prints microseconds of this process's CPU time per record (best of the repeats,
CPU time rather than wall time, so the least disturbed by a busy machine) for:

- each stage of the library's page path: orjson alone, the envelope check,
  the lenient hook, ``parse_page`` whole;
- each part of the lenient ``CallRecord`` hook, timed on its own inputs
  (callers, user talk, external number, flags, enums, the date, scalars) and
  the record's own frame (what is left: its ``get`` per field, the inline
  checks and the frozen ``__init__``);
- floors: building the same attrs objects from values already converted
  (frozen as shipped, and non-frozen clones), the least any hook can spend;
- the cattrs-generated hooks with the same rules
  (``make_converter(generated_hooks=False)``, the strict converter's kind and
  the lenient one's before the generated hooks of ``ccrm_async/_hooks.py``;
  checked equal to the library's output on every record);
- a plain cattrs converter with the renames only (no rule), for scale;
- ``--profile``: cProfile of the lenient hook, the top functions by own time,
  in microseconds per record (cProfile inflates small calls: read it for the
  ranking, the timings above for the costs).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override
from cattrs.strategies import configure_union_passthrough

from ccrm_async._core.responses import parse_envelope
from ccrm_async.converter import _MODELS, LENIENT, make_converter, wire_names
from ccrm_async.models import calls
from ccrm_async.parsing import parse_page
from ccrm_async.testing import CallDataset

PAGE = 1000


def hook(cls: Any) -> Callable[[Any, Any], Any]:
    return LENIENT.get_structure_hook(cls)


def plain_hook() -> Callable[[Any, Any], Any]:
    """A plain cattrs converter with the wire renames and nothing else: no
    leniency rule (it loses ``reluuid``, refuses ``{}`` for a list, ...). What
    the rules cost on top of cattrs itself."""
    conv = cattrs.Converter(detailed_validation=False)
    configure_union_passthrough(int | float | str | bool | None, conv)
    conv.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    for cls in _MODELS:
        renames = {name: override(rename=wire) for name, wire in wire_names(cls).items()}
        conv.register_structure_hook(
            cls,
            make_dict_structure_fn(cls, conv, _cattrs_detailed_validation=False, **renames),  # type: ignore[arg-type]
        )
    return conv.get_structure_hook(calls.CallRecord)


# -- the report ---------------------------------------------------------------------------


def _mutable_clone(cls: type) -> type:
    fields = {a.name: attrs.field(default=a.default) for a in attrs.fields(cls)}
    return attrs.make_class(f"Mutable{cls.__name__}", fields, slots=True, frozen=False)


def _values(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, a.name) for a in attrs.fields(type(record)))


def _construct_all(built: list[calls.CallRecord], frozen: bool) -> Callable[[], object]:
    """Build every object of every record again from values already converted,
    positionally: the least a hook must spend on construction."""
    classes = (calls.Caller, calls.Receiver, calls.UserTalk, calls.ExternalNumber, calls.Flag)
    caller, receiver, user_talk, external, flag = (
        classes if frozen else tuple(_mutable_clone(c) for c in classes)
    )
    record = calls.CallRecord if frozen else _mutable_clone(calls.CallRecord)
    plans = [
        (
            _values(r)[:10],
            _values(r.to) if r.to else None,
            _values(r.from_) if r.from_ else None,
            (r.user_talk.status, [_values(x) for x in r.user_talk.receivers])
            if r.user_talk
            else None,
            _values(r.external_number) if r.external_number else None,
            [_values(f) for f in r.flags],
        )
        for r in built
    ]

    def work() -> object:
        for start in range(0, len(plans), PAGE):
            [
                record(
                    *head,
                    to and caller(*to),
                    from_ and caller(*from_),
                    talk and user_talk(talk[0], tuple([receiver(*x) for x in talk[1]])),
                    ext and external(*ext),
                    tuple([flag(*f) for f in flags]),
                )
                for head, to, from_, talk, ext, flags in plans[start : start + PAGE]
            ]
        return None

    return work


def report(records: int, repeats: int) -> None:
    items = CallDataset(count=records).calls
    n = len(items)
    bodies = [
        orjson.dumps(
            {
                "success": True,
                "data": items[i : i + PAGE],
                "otherData": {"totalCount": n},
                "message": "OK",
            }
        )
        for i in range(0, n, PAGE)
    ]
    call = hook(calls.CallRecord)
    caller = hook(calls.Caller | None)
    user_talk = hook(calls.UserTalk | None)
    external = hook(calls.ExternalNumber | None)
    flags = hook(tuple[calls.Flag, ...])
    direction = hook(calls.CallDirection | None)
    service = hook(calls.CallService | None)
    status = hook(calls.CallStatus | None)
    date = hook(datetime)
    to_str, to_int, to_bool = hook(str), hook(int), hook(bool)
    ostr, number = hook(str | None), hook(int | float)
    plain = plain_hook()
    cattrs_call = make_converter(generated_hooks=False).get_structure_hook(calls.CallRecord)
    built = [call(o, calls.CallRecord) for o in items]
    assert [cattrs_call(o, calls.CallRecord) for o in items] == built, "the same records"

    pages = [items[i : i + PAGE] for i in range(0, n, PAGE)]

    def each_page(
        work: Callable[[Any], object], inputs: list[Any] | None = None
    ) -> Callable[[], object]:
        # Page by page, each page's results dropped before the next, as in a pull.
        def run() -> object:
            for page in pages if inputs is None else inputs:
                work(page)
            return None

        return run

    parts: dict[str, Callable[[], object]] = {
        "  to + from (Caller x 2)": each_page(
            lambda page: [
                (caller(o["to"], calls.Caller), caller(o["from"], calls.Caller)) for o in page
            ]
        ),
        "  userTalk (UserTalk + Receiver)": each_page(
            lambda page: [user_talk(o["userTalk"], calls.UserTalk) for o in page]
        ),
        "  externalNumber": each_page(
            lambda page: [external(o["externalNumber"], None) for o in page]
        ),
        "  flags (tuple of Flag, reluuid alias)": each_page(
            lambda page: [flags(o["flags"], tuple[calls.Flag, ...]) for o in page]
        ),
        "  3 enums (direction, service, status)": each_page(
            lambda page: [
                (
                    direction(o["callDirection"], None),
                    service(o["service"], None),
                    status(o["status"], None),
                )
                for o in page
            ]
        ),
        "  callDate (datetime.fromisoformat)": each_page(
            lambda page: [date(o["callDate"], datetime) for o in page]
        ),
        "  6 scalars (uuid, duration, note, ...)": each_page(
            lambda page: [
                (
                    to_str(o["uuid"], str),
                    to_int(o["duration"], int),
                    to_bool(o["note"], bool),
                    ostr(o["destination"], None),
                    number(o["cost"], None),
                    ostr(o["smsData"], None),
                )
                for o in page
            ]
        ),
    }
    rows: dict[str, Callable[[], object]] = {
        "orjson.loads of the page": each_page(orjson.loads, bodies),
        "parse_envelope (lenient_json + checks)": each_page(parse_envelope, bodies),
        "parse_page (envelope + hook + Page)": each_page(
            lambda body: parse_page(body, calls.CallRecord, 1), bodies
        ),
        "lenient CallRecord hook, whole": each_page(
            lambda page: [call(o, calls.CallRecord) for o in page]
        ),
        **parts,
        "floor: every object rebuilt, frozen": _construct_all(built, frozen=True),
        "floor: every object rebuilt, non-frozen": _construct_all(built, frozen=False),
        "cattrs-generated hooks, same rules": each_page(
            lambda page: [cattrs_call(o, calls.CallRecord) for o in page]
        ),
        "plain cattrs, renames only (no rule)": each_page(
            lambda page: [plain(o, calls.CallRecord) for o in page]
        ),
    }
    # The data set stays alive but out of the collector's way, as in a pull's
    # process, whose heap holds little beside the page in hand.
    gc.collect()
    gc.freeze()
    # Round-robin, best of the repeats: a load spike hits one repeat of every row.
    # Each row with the collector on (as shipped) and off (its share).
    best = {(name, on): float("inf") for name in rows for on in (True, False)}
    for _ in range(repeats):
        for name, work in rows.items():
            for on in (True, False):
                gc.collect()
                if not on:
                    gc.disable()
                started = time.process_time()
                work()
                elapsed = time.process_time() - started
                gc.enable()
                best[name, on] = min(best[name, on], elapsed)
    gc.unfreeze()
    cost = {key: seconds / n * 1e6 for key, seconds in best.items()}
    rest = {
        on: cost["lenient CallRecord hook, whole", on] - sum(cost[name, on] for name in parts)
        for on in (True, False)
    }

    print(
        f"{n:,} call records of the emulator's data, page by page, best of {repeats};"
        " µs per record, collector on / off"
    )
    for name in rows:
        print(f"   {name:<44} {cost[name, True]:7.2f} {cost[name, False]:7.2f}")
        if name == list(parts)[-1]:
            print(f"   {'  the record itself (the rest)':<44} {rest[True]:7.2f} {rest[False]:7.2f}")
    whole = cost["parse_page (envelope + hook + Page)", True]
    print(f"   records/s of parse_page alone, collector on: {1e6 / whole:,.0f}")


def profile(records: int) -> None:
    items = CallDataset(count=records).calls
    call = hook(calls.CallRecord)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for o in items:
        call(o, calls.CallRecord)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)
    print(f"cProfile of the lenient hook over {len(items):,} records: own CPU time, µs per record")
    for (path, line, name), (_, calls_n, own, cum, _) in entries[:18]:
        where = f"{path.rsplit('/', 1)[-1]}:{line}"
        print(
            f"   {own / len(items) * 1e6:6.2f} own {cum / len(items) * 1e6:6.2f} cum"
            f" {calls_n / len(items):5.1f} calls/rec  {name} ({where})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also run cProfile")
    args = parser.parse_args()
    report(args.records, args.repeats)
    if args.profile:
        profile(args.records)


if __name__ == "__main__":
    main()
