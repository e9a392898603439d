"""Enums that accept the server's spellings and survive values they do not know."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

__all__ = ["WireEnum"]


def fold(value: str) -> str:
    """``"NO_ANSWER"``, ``"noAnswer"`` and ``"no_answer"`` all fold to ``"noanswer"``."""
    return value.replace("_", "").replace("-", "").lower()


class WireEnum(StrEnum):
    """A string enum matched in any letter case, with or without underscores.

    A value the enum does not list becomes a *pseudo-member*: an instance of
    the enum whose ``value`` is the server's string and whose ``name`` is
    ``"UNLISTED"``. It compares unequal to every listed member, and ``known``
    is False, so the record that carries it is kept and nothing is lost.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        key = fold(value)
        for member in cls:
            if fold(member.value) == key:
                return member
        pseudo = str.__new__(cls, value)
        pseudo._name_ = "UNLISTED"
        pseudo._value_ = value
        return pseudo

    @property
    def known(self) -> bool:
        """False for a value the server sent that this version does not list."""
        return any(self is member for member in type(self))

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return type(self), (self._value_,)
