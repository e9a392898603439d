"""Structure functions for the record models, generated as Python source.

The lenient converter's fast path (see :mod:`ccrm_async.converter`): for each
attrs model, one function written for that model's fields and compiled once,
instead of cattrs' generic ``make_dict_structure_fn``. It applies the same
rules with the same helpers, and takes the same spellings; it is only shorter
per record:

- one ``dict.get`` per field (cattrs does ``'key' in o`` then ``o['key']``,
  stores into a ``res`` dict and calls the class with ``**res``);
- the usual wire type checked inline (``type(v) is str``), so a helper
  (``_to_str``, ``_to_int``...) is called only for a value that needs bending
  or is refused;
- enum members cached per class in a dict the function closes over;
- the documented key first, then its alias (``relUuid``, then ``reluuid``),
  without copying the dict;
- positional construction, nested models called directly.

A value the rules refuse raises (the converter's ``Unfit``, a ``KeyError`` for
a missing required key...), and the record then takes the slow path
(:func:`ccrm_async.converter.read_record`), exactly as with cattrs' hooks. The
cattrs-generated hooks stay in the strict converter and in
``make_converter(generated_hooks=False)``; a Hypothesis test checks both give
the same record, or both refuse.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar, get_args, get_origin

import attrs
import cattrs

from .models._enum import WireEnum

__all__ = ["HookWriter", "Scalar", "UnstructureWriter"]

_MISSING: Any = object()


class Scalar(NamedTuple):
    """How a scalar field type is read: the wire types taken as they are
    (checked inline), and the helper that bends or refuses anything else."""

    wire_types: tuple[type, ...]
    helper: Callable[[Any, Any], Any]

    def miss(self, var: str) -> str:
        """The inline test that *var* is not one of the wire types."""
        return " and ".join(f"type({var}) is not {t.__name__}" for t in self.wire_types)


def _optional_inner(tp: Any) -> Any:
    """``X`` of ``X | None`` (``int | float`` of ``int | float | None``), else None."""
    args = get_args(tp)
    if get_origin(tp) is not types.UnionType or type(None) not in args:
        return None
    return functools.reduce(operator.or_, [a for a in args if a is not type(None)])


H = TypeVar("H", bound=Callable[..., Any])


class _PerModel(Generic[H]):
    """``writer[cls]``: the function *generate* writes for model *cls*, written
    on first use and kept."""

    def __init__(self, generate: Callable[[type], H]) -> None:
        self._write = generate
        self._hooks: dict[type, H] = {}

    def __getitem__(self, cls: type) -> H:
        hook = self._hooks.get(cls)
        if hook is None:
            hook = self._hooks[cls] = self._write(cls)
        return hook


class HookWriter(_PerModel[Callable[..., Any]]):
    """Writes, compiles and keeps one structure function per attrs model.

    *conv* gives the hooks of the other types (date-times, enums, anything
    not written inline); *names* maps a model to its attribute -> wire key
    table, *aliases* a model to its alias -> documented key table; *scalars*
    the inline-checked scalar types; *unfit* is raised for a value in no
    documented spelling. A generated function takes ``(value, type=None)``,
    the signature of a cattrs hook.
    """

    def __init__(
        self,
        conv: cattrs.Converter,
        *,
        names: Callable[[type], dict[str, str]],
        aliases: Mapping[type, Mapping[str, str]],
        scalars: Mapping[Any, Scalar],
        unfit: type[Exception],
    ) -> None:
        self._conv = conv
        self._names = names
        self._aliases = aliases
        self._scalars = scalars
        self._unfit_type = unfit
        self.sources: dict[type, str] = {}  # the generated code, to read
        super().__init__(self._generate)

    def _unfit(self) -> Any:
        raise self._unfit_type

    def _enum_reader(self, cls: type[WireEnum]) -> Callable[[Any], WireEnum]:
        hook = self._conv.get_structure_hook(cls)
        seen: dict[Any, WireEnum] = {}

        def read(value: Any) -> WireEnum:
            member = seen.get(value)
            if member is None:
                member = hook(value, cls)
                if len(seen) < 256:
                    seen[value] = member
            return member

        return read

    def _generate(self, cls: type) -> Callable[..., Any]:
        attrs.resolve_types(cls)
        names = self._names(cls)
        aliases = {doc: alias for alias, doc in self._aliases.get(cls, {}).items()}
        env: dict[str, Any] = {"MISSING": _MISSING, "unfit": self._unfit, "cls": cls}
        lines = [f"def structure_{cls.__name__}(o, _=None):", "    get = o.get"]
        args = []
        for i, field in enumerate(attrs.fields(cls)):
            key, var = names[field.name], f"v{i}"
            args.append(var)
            lines += self._field(field, key, var, aliases.get(key), env)
        lines.append(f"    return cls({', '.join(args)})")
        source = self.sources[cls] = "\n".join(lines)
        # Our own source, built above from the model's fields: no outside text.
        exec(compile(source, f"<structure {cls.__name__}>", "exec"), env)  # noqa: S102
        hook: Callable[..., Any] = env[f"structure_{cls.__name__}"]
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
        if inner is datetime:  # "" is an absent date-time too: the converter's own hook
            inner = None
        read = self._reader(inner if inner is not None else tp, var, env)
        if inner is not None and attrs.has(inner):
            # [{...}], [] or {} for an object: the slow path reads them
            read = (
                f"None if {var} is None else {read} if type({var}) is dict and {var} else unfit()"
            )
        elif inner is not None and read != var:
            read = f"None if {var} is None else {read}"
        scalar = self._scalars.get(inner if inner is not None else tp)
        check = ""
        if scalar is not None:
            env[f"h_{var}"] = scalar.helper
            guard = f"{var} is not None and " if inner is not None else ""
            check = f"    if {guard}{scalar.miss(var)}: {var} = h_{var}({var}, None)"
        # The default can stand in for a missing key when reading it again would
        # give it back unchanged: None for an optional, a scalar of the usual type.
        plain = not required and (
            (default is None and inner is not None)
            or (scalar is not None and type(default) in scalar.wire_types)
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
        if tp in self._scalars:
            return var
        if isinstance(tp, type) and issubclass(tp, WireEnum):
            env[f"r_{var}"] = self._enum_reader(tp)
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
        # date-times (the converter's zone), optional date-times, anything else
        env[f"r_{var}"] = self._conv.get_structure_hook(tp)
        env[f"t_{var}"] = tp
        return f"r_{var}({var}, t_{var})"


# Field types written to the wire as they are.
_AS_IS = frozenset({str, int, bool, float, int | float})


class UnstructureWriter(_PerModel[Callable[[Any], dict[str, Any]]]):
    """Writes one unstructure function per attrs model: the wire object, keys in
    the fields' order (as cattrs' ``make_dict_unstructure_fn`` writes it, at a
    third of its cost). *conv* gives the date-time writer (the converter's zone)
    and the hook of any other type; *names* maps a model to its attribute ->
    wire key table."""

    def __init__(self, conv: cattrs.Converter, *, names: Callable[[type], dict[str, str]]) -> None:
        self._conv = conv
        self._names = names
        super().__init__(self._generate)

    def _generate(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        attrs.resolve_types(cls)
        names = self._names(cls)
        env: dict[str, Any] = {}
        lines = [f"def unstructure_{cls.__name__}(o):"]
        items = []
        for i, field in enumerate(attrs.fields(cls)):
            var = f"v{i}"
            tp = field.type
            inner = _optional_inner(tp)
            write = self._writer(inner if inner is not None else tp, var, env)
            lines.append(f"    {var} = o.{field.name}")
            if write != var:
                if inner is not None:
                    write = f"None if {var} is None else {write}"
                lines.append(f"    {var} = {write}")
            items.append(f"{names[field.name]!r}: {var}")
        lines.append(f"    return {{{', '.join(items)}}}")
        source = "\n".join(lines)
        # Our own source, built above from the model's fields: no outside text.
        exec(compile(source, f"<unstructure {cls.__name__}>", "exec"), env)  # noqa: S102
        hook: Callable[[Any], dict[str, Any]] = env[f"unstructure_{cls.__name__}"]
        return hook

    def _writer(self, tp: Any, var: str, env: dict[str, Any]) -> str:
        """An expression writing *var* (of type *tp*, not None) for the wire."""
        if tp in _AS_IS:
            return var
        if isinstance(tp, type) and issubclass(tp, WireEnum):
            return f"{var}.value"
        if attrs.has(tp):
            env[f"w_{var}"] = self[tp]
            return f"w_{var}({var})"
        if get_origin(tp) is tuple and attrs.has(get_args(tp)[0]):
            env[f"w_{var}"] = self[get_args(tp)[0]]
            return f"[w_{var}(x) for x in {var}]"
        env[f"w_{var}"] = self._conv.get_unstructure_hook(tp)
        return f"w_{var}({var})"
