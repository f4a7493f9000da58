"""A grid of field-MD runs, launched and judged the same way by active learning and by transport campaigns.

Exploration (every seed structure x temperature x field) and a campaign (structures x T x E x Z* mode x
replicas) differ in which runs they make and in what they do with the frames, not in how a run is
launched or when its frames count. So both declare the same ``md`` inputs (:func:`define_inputs`), put
their list of :class:`MDRun` in a queue (:func:`enqueue`), launch it in waves of at most
``md.max_concurrent`` runs (:func:`launch_next`, in a ``while_(has_queued)`` loop) and judge each run with
:func:`outcome`; each run is an :class:`~.workchain.MDWorkChain`, so a run killed by its walltime continues
by itself.

Why waves: on a computer without a queue (a laptop's ``core.direct``) every submitted run starts at once; a
campaign of 18 runs on 2 cores started 18 MD processes (load 21, 8 GB resident). A scheduler such as SLURM
queues them itself, hence 0 (no limit) as the default.
"""

from __future__ import annotations

import dataclasses
import json

from aiida import orm

from .workchain import MDCalculation, MDWorkChain, md_usable

#: Where a workchain keeps the runs not launched yet (checkpointed with its context).
QUEUE = 'md_queue'


@dataclasses.dataclass(frozen=True)
class MDRun:
    """One run of a grid: its key (the call link label), start structure, MDSettings and driving model(s)."""

    key: str
    structure: orm.StructureData
    settings: dict
    driver: dict  # {'model': ModelData} or {'committee': CommitteeData}


def define_inputs(spec, purpose: str, namespace: str = 'md') -> None:
    """The ``md`` inputs every run of the grid shares: code, compiled model, job options, runs at a time."""
    spec.expose_inputs(
        MDCalculation,
        namespace=namespace,
        include=('code', 'compiled'),
        namespace_options={
            'help': f'MDCalculation inputs shared by every {purpose} run (code, compiled, options, max_concurrent).',
            'validator': None,  # the structure and the model come from the grid
        },
    )
    spec.input(
        f'{namespace}.options',
        valid_type=orm.Dict,
        required=False,
        help='`metadata.options` of every MDCalculation (resources, max_wallclock_seconds, queue, ...).',
    )
    spec.input(
        f'{namespace}.max_concurrent',
        valid_type=orm.Int,
        default=lambda: orm.Int(0),
        validator=_validate_max_concurrent,
        help='Run at most this many MD runs at a time (0: all at once, for a computer whose scheduler queues '
        'them). On a computer without a queue (core.direct), the number of runs it can hold: `ionfield` sets '
        'the cores of a laptop profile.',
    )


def _validate_max_concurrent(value, _ctx=None):
    if value is not None and value.value < 0:
        return f'`max_concurrent` must be >= 0 (0: no limit), not {value.value}'
    return None


def enqueue(workchain, runs: list[MDRun]) -> None:
    """Put ``runs`` in the workchain's queue (in its context, so a daemon restart keeps it)."""
    keys = [run.key for run in runs]
    if len(set(keys)) != len(keys):
        raise ValueError(f'MD run keys must be unique: {keys}')
    workchain.ctx[QUEUE] = [
        {
            'key': run.key,
            'structure': run.structure,
            'settings': json.loads(json.dumps(run.settings)),  # plain types for the checkpoint
            'driver': dict(run.driver),
        }
        for run in runs
    ]


def has_queued(workchain) -> bool:
    return bool(workchain.ctx.get(QUEUE))


def launch_next(workchain, namespace: str = 'md') -> dict[str, orm.ProcessNode]:
    """Submit the next wave (``max_concurrent`` runs, all when 0) of queued runs; their futures, by key."""
    queue = list(workchain.ctx[QUEUE])
    ports = workchain.inputs[namespace]
    size = ports.max_concurrent.value if 'max_concurrent' in ports else 0
    wave, workchain.ctx[QUEUE] = queue[: size or len(queue)], queue[size or len(queue) :]
    runs = [MDRun(**entry) for entry in wave]
    futures = launch(workchain, runs, namespace)
    if workchain.ctx[QUEUE]:
        workchain.report(f'{len(futures)} MD run(s) launched, {len(workchain.ctx[QUEUE])} waiting (max_concurrent)')
    return futures


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
