"""Protocol files of the labelling engines (``qe.yaml``, ``vasp.yaml``); see :mod:`ionfield.workflows.protocols`."""

from __future__ import annotations

from ionfield.workflows import protocols

recursive_merge = protocols.recursive_merge

__all__ = ('ProtocolFile', 'recursive_merge')


class ProtocolFile(protocols.ProtocolFile):
    """One engine's protocol file in this folder."""

    def __init__(self, filename: str) -> None:
        super().__init__(__package__, filename)
