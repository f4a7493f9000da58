"""Port validators shared by our CalcJobs: a settings ``Dict`` checked by the runner's own settings class."""

from __future__ import annotations


def settings_validator(settings_class, error_class, what: str):
    """A port validator that refuses a ``Dict`` ``settings_class.from_dict`` refuses, with its message."""

    def validate(value, _ctx=None):
        if value is None:
            return None
        try:
            settings_class.from_dict(value.get_dict())
        except error_class as exc:
            return f'invalid {what} settings: {exc}'
        return None

    return validate
