"""Protocols: named sets of physics defaults in YAML, one file per workchain, read the same way everywhere.

A file has ``default_inputs``, ``default_protocol`` and ``protocols`` (each a partial override of the
defaults with a ``description``), the layout of aiida-quantumespresso's protocol files, so users who know
``get_builder_from_protocol`` there know it here. Comments in the YAML carry the evidence for a default.
Every workchain with a protocol derives from :class:`ProtocolMixin` and names its file; its
``get_builder_from_protocol`` reads ``get_protocol_inputs(protocol, overrides)`` and nothing else.
"""

from __future__ import annotations

import copy
import functools
from importlib.resources import files

import yaml

__all__ = ('ProtocolFile', 'ProtocolMixin', 'recursive_merge')

#: Keys whose values are free-form dicts (namelists, scheduler options) or a settings class's dict (which that
#: class checks itself, refusing unknown keys): overrides inside them are not checked here.
FREE_FORM = (
    'parameters',
    'options',
    'smearing',
    'SYSTEM',
    'CONTROL',
    'ELECTRONS',
    'INPUTPH',
    'settings',
    'training',
    'md_overrides',
    'analysis',
    'active_learning',  # the pipeline's overrides of a stage protocol, checked by that stage's file
    'validation',
    'campaign',
)


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
    """One protocol file: ``filename`` inside the installed package ``package``."""

    def __init__(self, package: str, filename: str) -> None:
        self.package = package
        self.filename = filename

    @functools.cached_property
    def content(self) -> dict:
        return yaml.safe_load(files(self.package).joinpath(self.filename).read_text())

    @property
    def names(self) -> list[str]:
        return list(self.content['protocols'])

    @property
    def default(self) -> str:
        return self.content['default_protocol']

    def descriptions(self) -> dict[str, str]:
        return {name: values.get('description', '') for name, values in self.content['protocols'].items()}

    def get_inputs(self, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """Defaults, then the protocol's values, then ``overrides``; unknown protocols and keys are refused."""
        protocol = protocol or self.default
        if protocol not in self.content['protocols']:
            raise ValueError(f'unknown protocol `{protocol}` in {self.filename}; known: {", ".join(self.names)}')
        defaults = self.content['default_inputs']
        values = dict(self.content['protocols'][protocol])
        values.pop('description', None)
        _check_known_keys(defaults, values, self.filename)
        _check_known_keys(defaults, overrides or {}, self.filename)
        return recursive_merge(recursive_merge(defaults, values), overrides or {})


def _check_known_keys(defaults: dict, overrides: dict, filename: str, path: str = '') -> None:
    """A misspelt override would silently do nothing: refuse keys the protocol does not have (free-form dicts aside)."""
    for key, value in overrides.items():
        where = f'{path}{key}'
        if key not in defaults:
            raise ValueError(f'override `{where}` is not a key of {filename}; known: {", ".join(defaults)}')
        if isinstance(value, dict) and isinstance(defaults[key], dict) and key not in FREE_FORM:
            _check_known_keys(defaults[key], value, filename, f'{where}.')


class ProtocolMixin:
    """``get_available_protocols`` / ``get_default_protocol`` / ``get_protocol_inputs`` for a workchain."""

    #: The workchain's protocol file; set by every subclass.
    protocol_file: ProtocolFile

    @classmethod
    def get_available_protocols(cls) -> dict[str, str]:
        """Protocol name -> description."""
        return cls.protocol_file.descriptions()

    @classmethod
    def get_default_protocol(cls) -> str:
        return cls.protocol_file.default

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """The protocol's inputs as plain values: defaults, the named protocol, then ``overrides``."""
        return cls.protocol_file.get_inputs(protocol, overrides)
