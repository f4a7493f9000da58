"""Protocol files of the labelling engines (YAML, physics defaults out of code) and their reader.

A file has ``default_inputs``, ``default_protocol`` and ``protocols`` (each a partial override of the
defaults with a ``description``), the layout of aiida-quantumespresso's protocol files, so users who know
``get_builder_from_protocol`` there know it here.
"""

from __future__ import annotations

import copy
import functools
from importlib.resources import files

import yaml

__all__ = ('ProtocolFile', 'recursive_merge')


def recursive_merge(left: dict, right: dict) -> dict:
    """``left`` updated with ``right``, nested dicts merged key by key (a new dict; the inputs are untouched)."""
    merged = copy.deepcopy(left)
    for key, value in right.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class ProtocolFile:
    """One engine's protocol file in this folder."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    @functools.cached_property
    def content(self) -> dict:
        return yaml.safe_load(files(__package__).joinpath(self.filename).read_text())

    @property
    def names(self) -> list[str]:
        return list(self.content['protocols'])

    @property
    def default(self) -> str:
        return self.content['default_protocol']

    def get_inputs(self, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """Defaults, then the protocol's values, then ``overrides``; unknown protocols and keys are refused."""
        protocol = protocol or self.default
        if protocol not in self.content['protocols']:
            raise ValueError(f'unknown protocol `{protocol}` in {self.filename}; known: {", ".join(self.names)}')
        defaults = self.content['default_inputs']
        values = dict(self.content['protocols'][protocol])
        values.pop('description', None)
        merged = recursive_merge(defaults, values)
        _check_known_keys(defaults, overrides or {}, self.filename)
        return recursive_merge(merged, overrides or {})


_FREE_FORM = ('parameters', 'options', 'smearing', 'SYSTEM', 'CONTROL', 'ELECTRONS', 'INPUTPH')


def _check_known_keys(defaults: dict, overrides: dict, filename: str, path: str = '') -> None:
    """A misspelt override would silently do nothing: refuse keys the protocol does not have (namelists are free)."""
    for key, value in overrides.items():
        where = f'{path}{key}'
        if key not in defaults:
            raise ValueError(f'override `{where}` is not a key of {filename}; known: {", ".join(defaults)}')
        if isinstance(value, dict) and isinstance(defaults[key], dict) and key not in _FREE_FORM:
            _check_known_keys(defaults[key], value, filename, f'{where}.')
