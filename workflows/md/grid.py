"""A grid of field-MD runs, launched and judged the same way by active learning and by transport campaigns.

Exploration (every seed structure x temperature x field) and a campaign (structures x T x E x Z* mode x
replicas) differ in which runs they make and in what they do with the frames, not in how a run is
launched or when its frames count. So both build a list of :class:`MDRun` and call :func:`launch` and
:func:`outcome` here; each run is an :class:`~.workchain.MDWorkChain`, so a run killed by its walltime
continues by itself.
"""

from __future__ import annotations

import dataclasses

from aiida import orm

from .workchain import MDCalculation, MDWorkChain, md_usable


@dataclasses.dataclass(frozen=True)
class MDRun:
    """One run of a grid: its key (the call link label), start structure, MDSettings and driving model(s)."""

    key: str
    structure: orm.StructureData
    settings: dict
    driver: dict  # {'model': ModelData} or {'committee': CommitteeData}


def launch(workchain, runs: list[MDRun], namespace: str = 'md') -> dict[str, orm.ProcessNode]:
    """Submit one ``MDWorkChain`` per run, with the caller's shared MD inputs (code, options) in ``namespace``."""
    shared = workchain.exposed_inputs(MDCalculation, namespace=namespace)
    ports = workchain.inputs[namespace]
    options = ports.options.get_dict() if 'options' in ports else {}
    futures = {}
    for run in runs:
        inputs = {
            **shared,
            'structure': run.structure,
            'settings': orm.Dict(run.settings),
            **run.driver,
            'metadata': {'options': options},
        }
        futures[run.key] = workchain.submit(MDWorkChain, md=inputs, metadata={'call_link_label': run.key})
    return futures


def outcome(node) -> tuple[bool, str]:
    """Whether a finished run's frames can be used, and what to report: a stop reason or a failure."""
    message = f'{node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}'
    return md_usable(node), message if node.exit_status else ''
