"""``ionfield check``: validate structures with ``StructureCheckWorkChain`` (run here or on the daemon)."""

from __future__ import annotations

import click

from .launch import submit as submit_process
from .launch import wait_for
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail


def read_structures(sources: tuple[str, ...]):
    """Return ``[(name, ase.Atoms)]`` from files (CIF, POSCAR, extxyz, ...) or reference-structure names."""
    import pathlib

    from ase.io import read

    from ionfield.models.structures.reference import REFERENCE_STRUCTURES, get_reference_structure

    structures = []
    for source in sources:
        if source in REFERENCE_STRUCTURES:
            structures.append((source, get_reference_structure(source)))
            continue
        if not pathlib.Path(source).is_file():
            raise click.BadParameter(
                f'`{source}` is neither a file nor a reference structure ({", ".join(REFERENCE_STRUCTURES)})',
                param_hint='STRUCTURE',
            )
        try:
            structures.append((source, read(source)))
        except Exception as exception:  # ase raises many types for unreadable files
            raise click.BadParameter(f'cannot read `{source}`: {exception}', param_hint='STRUCTURE') from exception
    return structures


@cli.command('check')
@click.argument('structures', nargs=-1, required=True, metavar='STRUCTURE...')
@click.option('--min-distance', default=0.5, show_default=True, type=float, help='Overlap threshold in Å.')
@click.option('--submit', is_flag=True, help='Submit to the daemon instead of running in this process.')
@click.option('--wait', 'wait_s', default=120.0, show_default=True, type=float, help='With --submit: seconds to wait.')
@PROFILE_OPTION
def cmd_check(structures, min_distance, submit, wait_s, profile):
    """Check STRUCTURE files or reference names (e.g. alpha-Li3N) for overlaps, periodicity and density."""
    from aiida import orm
    from aiida.engine import run_get_node

    from ionfield.workflows.structures.check import StructureCheckWorkChain

    load_profile_or_fail(profile)
    nodes = []
    for name, atoms in read_structures(structures):
        inputs = {'structure': orm.StructureData(ase=atoms), 'min_distance': orm.Float(min_distance)}
        if submit:
            node = submit_process(StructureCheckWorkChain, **inputs)
            click.echo(f'{name}: submitted StructureCheckWorkChain<{node.pk}>')
        else:
            _, node = run_get_node(StructureCheckWorkChain, **inputs)
        nodes.append((name, node))
    if submit and not wait_for([node for _, node in nodes], wait_s):
        raise click.ClickException(
            f'not finished after {wait_s:.0f} s: is the daemon running? `verdi process list`, `ionfield doctor`'
        )
    failed = 0
    for name, node in nodes:
        if node.is_finished_ok:
            summary = node.outputs.summary
            click.echo(
                f'{name}: {summary["formula"]}, {summary["natoms"]} atoms, {summary["density"]:.3f} g/cm^3, '
                f'shortest distance {summary["min_distance"]:.3f} Å  [pk {node.pk}]'
            )
        else:
            failed += 1
            click.echo(f'{name}: [{node.exit_status}] {node.exit_message}  [pk {node.pk}]', err=True)
    if failed:
        raise SystemExit(3)
