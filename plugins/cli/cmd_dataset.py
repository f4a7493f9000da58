"""``ionfield dataset show|export``: look at a ``DatasetData`` node and write it for NequIP."""

from __future__ import annotations

import math

import click

from .params import load_dataset
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail


@cli.group('dataset')
def cmd_dataset():
    """Inspect and export labelled datasets (``DatasetData`` nodes)."""


def _fmt(value) -> str:
    if isinstance(value, float):
        return 'n/a' if math.isnan(value) else f'{value:.4g}'
    return str(value)


@cmd_dataset.command('show')
@click.argument('identifier', metavar='DATASET')
@click.option('--frames', 'show_frames', is_flag=True, help='Also list every frame.')
@PROFILE_OPTION
def dataset_show(identifier, show_frames, profile):
    """Statistics of DATASET (a DatasetData or a LabelWorkChain pk/UUID)."""
    from ionfield.models.data import asr_violation

    load_profile_or_fail(profile)
    node = load_dataset(identifier)
    dataset = node.get_dataset()
    click.echo(f'DatasetData<{node.pk}> {node.uuid}  sha256 {node.sha256[:16]}')
    for key, value in dataset.statistics().items():
        if key == 'species_counts':
            value = ', '.join(f'{element}: {count}' for element, count in value.items())
        click.echo(f'  {key:<22} {_fmt(value)}')
    if show_frames:
        click.echo(f'  {"#":>4} {"formula":<14} {"atoms":>5} {"E (eV)":>14} {"ASR (e)":>8}  flags  source')
        for index, frame in enumerate(dataset):
            formula = frame.to_ase().get_chemical_formula()
            flags = ','.join(sorted(frame.flags)) or '-'
            click.echo(
                f'  {index:>4} {formula:<14} {frame.natoms:>5} {_fmt(frame.energy):>14} '
                f'{_fmt(asr_violation(frame.born_charges)):>8}  {flags}  {frame.source_uuid or "-"}'
            )


@cmd_dataset.command('export')
@click.argument('identifier', metavar='DATASET')
@click.option('-o', '--output', required=True, type=click.Path(dir_okay=False, writable=True), help='.xyz or .npz')
@click.option('--asr-corrected/--raw', default=True, show_default=True, help='Born charges with the sum rule imposed.')
@click.option('--drop-flagged', is_flag=True, help='Leave out frames that carry any flag (e.g. asr_violation).')
@PROFILE_OPTION
def dataset_export(identifier, output, asr_corrected, drop_flagged, profile):
    """Write DATASET as extended XYZ (NequIP's ASE dataset reads it) or as the .npz file."""
    load_profile_or_fail(profile)
    dataset = load_dataset(identifier).get_dataset()
    if drop_flagged:
        dataset = dataset.filter(lambda frame: not frame.flags)
    if asr_corrected:
        dataset = type(dataset)(
            frame.replace(born_charges=frame.born_charges_asr) if frame.has_born_charges else frame for frame in dataset
        )
    if output.endswith('.npz'):
        dataset.save(output)
    else:
        dataset.to_extxyz(output)
    click.echo(f'wrote {len(dataset)} frames to {output}')
