"""A prototype of leaner lenient hooks, generated from the models (benchmark only).

The fast path of ``ccrm_async.converter.LENIENT`` for the call-history models
(its registered hooks: documented spellings, the same helpers; a value they
refuse raises, and the library then reads the record through ``read_record``),
emitted the way a small code generator could emit it instead of cattrs'
``make_dict_structure_fn``:

- one ``dict.get`` per field (cattrs does ``'key' in o`` and then ``o['key']``,
  stores into a ``res`` dict and calls the class with ``**res``);
- the common wire type checked inline (``type(v) is str``), so a converter
  helper (``_to_str``, ``_to_int``...) is called only for a value that needs
  bending, which is also the one place a count of bent values would go;
- enum members cached per class in a dict the function closes over;
- the documented key first, then its alias (``relUuid``, then ``reluuid``)
  without copying the dict;
- positional construction, nested models called directly.

``benchmarks/converter.py`` checks it builds the very records the library
builds and times both.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any, get_args, get_origin

import attrs

from ccrm_async.converter import (
    _ALIASES,
    LENIENT,
    _to_bool,
    _to_datetime,
    _to_int,
    _to_number,
    _to_str,
    _Unfit,
    wire_names,
)
from ccrm_async.models._enum import WireEnum

MISSING: Any = object()

# Field type -> (the type the wire usually sends, the helper that bends the rest).
_SCALARS: dict[Any, tuple[str, Callable[[Any, Any], Any]]] = {
    str: ("type({v}) is not str", _to_str),
    int: ("type({v}) is not int", _to_int),
    bool: ("type({v}) is not bool", _to_bool),
    int | float: ("type({v}) is not int and type({v}) is not float", _to_number),
}


def _optional_inner(tp: Any) -> Any:
    """``X`` of ``X | None`` (``int | float`` of ``int | float | None``), else None."""
    args = get_args(tp)
    if get_origin(tp) is not types.UnionType or type(None) not in args:
        return None
    return functools.reduce(operator.or_, [a for a in args if a is not type(None)])


def _unfit() -> Any:
    """A value not in its documented spelling: the record takes the slow path."""
    raise _Unfit


def _enum_reader(cls: type[WireEnum]) -> Callable[[Any], WireEnum]:
    hook = LENIENT.get_structure_hook(cls)
    seen: dict[Any, WireEnum] = {}

    def read(value: Any) -> WireEnum:
        member = seen.get(value)
        if member is None:
            member = hook(value, cls)
            if len(seen) < 256:
                seen[value] = member
        return member

    return read


class LeanHooks:
    """Generated structure functions for attrs models, built on first use."""

    def __init__(self) -> None:
        self._hooks: dict[type, Callable[[Any], Any]] = {}
        self.sources: dict[type, str] = {}  # the generated code, to read

    def __getitem__(self, cls: type) -> Callable[[Any], Any]:
        hook = self._hooks.get(cls)
        if hook is None:
            hook = self._hooks[cls] = self._generate(cls)
        return hook

    def _generate(self, cls: type) -> Callable[[Any], Any]:
        attrs.resolve_types(cls)
        names = wire_names(cls)
        aliases = {doc: alias for alias, doc in _ALIASES.get(cls, {}).items()}
        env: dict[str, Any] = {"MISSING": MISSING, "unfit": _unfit, "cls": cls}
        lines = [f"def structure_{cls.__name__}(o):", "    get = o.get"]
        args = []
        for i, field in enumerate(attrs.fields(cls)):
            key, var = names[field.name], f"v{i}"
            args.append(var)
            lines += self._field(field, key, var, aliases.get(key), env)
        lines.append(f"    return cls({', '.join(args)})")
        source = self.sources[cls] = "\n".join(lines)
        exec(compile(source, f"<lean structure {cls.__name__}>", "exec"), env)
        hook: Callable[[Any], Any] = env[f"structure_{cls.__name__}"]
        return hook

    def _field(
        self, field: Any, key: str, var: str, alias: str | None, env: dict[str, Any]
    ) -> list[str]:
        tp, default = field.type, field.default
        required = default is attrs.NOTHING
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            raise TypeError(f"{field.name}: factory defaults are not generated")
        env[f"d_{var}"] = default
        inner = _optional_inner(tp)
        if inner is datetime:  # "" is an absent date-time too: the library's own hook
            inner = None
        read = self._reader(inner if inner is not None else tp, var, env)
        if inner is not None and attrs.has(inner):
            # [{...}], [] or {} for an object: the slow path reads them
            read = (
                f"None if {var} is None else {read} if type({var}) is dict and {var} else unfit()"
            )
        elif inner is not None and read != var:
            read = f"None if {var} is None else {read}"
        scalar = _SCALARS.get(inner if inner is not None else tp)
        check = ""
        if scalar is not None:
            env[f"h_{var}"] = scalar[1]
            guard = f"{var} is not None and " if inner is not None else ""
            check = f"    if {guard}{scalar[0].format(v=var)}: {var} = h_{var}({var}, None)"
        # The default can stand in for a missing key when reading it again would
        # give it back unchanged: None for an optional, a scalar of the usual type.
        plain = not required and (
            (default is None and inner is not None)
            or (scalar is not None and not eval(scalar[0].format(v="d"), {"d": default}))
        )
        if required:
            lines = [f"    {var} = o[{key!r}]"]
        elif plain and alias is None:
            lines = [f"    {var} = get({key!r}, d_{var})"]
        else:
            lines = [f"    {var} = get({key!r}, MISSING)"]
        if alias is not None:
            fallback = f"d_{var}" if plain else "MISSING"
            lines.append(f"    if {var} is MISSING: {var} = get({alias!r}, {fallback})")
        if not required and not plain:
            lines.append(f"    {var} = d_{var} if {var} is MISSING else {read}")
        elif read != var:
            lines.append(f"    {var} = {read}")
        if check:
            lines.append(check)
        return lines

    def _reader(self, tp: Any, var: str, env: dict[str, Any]) -> str:
        """An expression reading *var* as *tp*, except the inline-checked scalars."""
        if tp in _SCALARS:
            return var
        if tp is datetime:
            env[f"r_{var}"] = _to_datetime
            return f"r_{var}({var}, None)"
        if isinstance(tp, type) and issubclass(tp, WireEnum):
            env[f"r_{var}"] = _enum_reader(tp)
            return f"r_{var}({var})"
        if attrs.has(tp):
            env[f"r_{var}"] = self[tp]
            return f"r_{var}({var})"
        if get_origin(tp) is tuple and attrs.has(get_args(tp)[0]):
            env[f"r_{var}"] = self[get_args(tp)[0]]
            return (
                f"(tuple([r_{var}(x) if type(x) is dict else unfit() for x in {var}])"
                f" if type({var}) is list else () if type({var}) is dict and not {var}"
                " else unfit())"
            )
        env[f"r_{var}"] = LENIENT.get_structure_hook(tp)
        env[f"t_{var}"] = tp
        return f"r_{var}({var}, t_{var})"
