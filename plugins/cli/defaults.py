"""What the profile set-up recorded and every command takes as its default, read in one place.

``ionfield setup`` records in the profile the codes it made (pw, ph, ionfield-train, ionfield-md), the
pseudopotential family it installed, and the kind of machine (``laptop``, ``server``, ``slurm``). The
commands take their defaults from here, so a laptop labels one DFT structure at a time everywhere.
"""

from __future__ import annotations

import click


def profile_settings() -> dict:
    from ionfield.plugins.setup.settings import get_settings

    return get_settings()


def qe_code_labels(profile_name: str, computer: str | None = None) -> dict[str, str]:
    """Labels of the pw and ph codes ``ionfield setup`` made (on ``computer`` if given); an error says how to fix."""
    codes = profile_settings().get('codes') or {}
    if not {'pw', 'ph'} <= set(codes):
        raise click.ClickException(
            f'profile `{profile_name}` has no pw/ph codes: run `ionfield setup laptop -p {profile_name}`'
        )
    if computer is not None:
        return {label: f'{label}@{computer}' for label in ('pw', 'ph')}
    return {label: codes[label] for label in ('pw', 'ph')}


def qe_codes(profile_name: str) -> dict:
    """``pw_code`` and ``ph_code`` (loaded) as the QE engine's builder takes them."""
    from aiida import orm

    labels = qe_code_labels(profile_name)
    return {'pw_code': orm.load_code(labels['pw']), 'ph_code': orm.load_code(labels['ph'])}


def label_overrides() -> dict:
    """Overrides of the labelling protocol: the pseudopotential family the set-up installed, if it recorded one."""
    family = profile_settings().get('pseudo_family')
    return {'pseudo_family': family} if family else {}


def max_concurrent_labels() -> int | None:
    """1 on a laptop profile (one DFT job at a time on a few cores); ``None`` elsewhere (the protocol's value)."""
    return 1 if profile_settings().get('kind') == 'laptop' else None


#: Resident memory of one MD process of the laptop campaign (18 processes: 8 GB), rounded up.
MD_PROCESS_BYTES = 2**30


def max_concurrent_md() -> int | None:
    """MD runs at a time on a laptop profile: one per core (each runs one thread), fewer when memory is short;
    ``None`` elsewhere (the protocol's value: a scheduler queues the runs itself)."""
    if profile_settings().get('kind') != 'laptop':
        return None
    return machine_md_slots()


def machine_md_slots() -> int:
    """How many one-thread MD processes this computer holds: its cores, bounded by available memory."""
    import os

    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    by_memory = psutil.virtual_memory().available // MD_PROCESS_BYTES
    return max(1, min(cores, by_memory))
