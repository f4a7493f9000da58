"""The one base of every settings class: refuse misspelt keys and bad values before anything runs.

Each stage's settings (training, MD, active learning, transport campaign, analysis) is a dataclass that
derives from :class:`Settings`. The base does what all of them need, once: ``from_dict`` refuses unknown
keys naming the known ones, ``validate`` collects every problem into one message (so a user fixes all of
them in one go), and the stage's own error class carries it. A subclass says only what is particular to
it: ``input_error`` and ``label`` (for messages), ``problems()`` (its checks) and, where a value needs
normalising before the dataclass sees it, ``_normalise``.

``True`` is an ``int`` in Python and NaN is a ``float``: neither is an acceptable number of steps,
temperature or fraction, so :func:`is_number` and :func:`is_integer` refuse both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Self


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value, minimum: int) -> bool:
    """An int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def is_positive(value) -> bool:
    """A finite number above zero."""
    return is_number(value) and value > 0


class SettingsError(ValueError):
    """Settings that cannot be used; each stage's error class derives from it, the message says what to change."""


@dataclasses.dataclass
class Settings:
    """Base of the validated settings dataclasses (see the module docstring)."""

    #: The error class a subclass raises (a subclass of :class:`SettingsError`).
    input_error: ClassVar[type[SettingsError]] = SettingsError
    #: What the settings are called in messages, e.g. ``'MD setting'``.
    label: ClassVar[str] = 'setting'

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Self:
        """Validated settings from a plain dict (protocol YAML, a Dict node, a JSON file); ``None`` gives defaults."""
        values = dict(values or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise cls.input_error(f'unknown {cls.label}(s) {unknown}; known: {sorted(known)}')
        settings = cls(**cls._normalise(values))
        settings.validate()
        return settings

    @classmethod
    def _normalise(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Turn accepted spellings into the field's type before construction (default: as given)."""
        return values

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    def problems(self) -> list[str]:
        """Every problem with these values, one message each (empty when they are fine)."""
        return []

    def validate(self) -> None:
        """Raise :attr:`input_error` listing every problem at once."""
        problems = self.problems()
        if problems:
            raise self.input_error('; '.join(problems))
