"""Port validators shared by our processes: a settings ``Dict`` checked by the settings class it is for."""

from __future__ import annotations


def settings_validator(settings_class, what: str):
    """A port validator that refuses a ``Dict`` that ``settings_class.from_dict`` refuses, with its message."""

    def validate(value, _ctx=None):
        if value is None:
            return None
        try:
            settings_class.from_dict(value.get_dict())
        except settings_class.input_error as exc:
            return f'invalid {what} settings: {exc}'
        return None

    return validate
