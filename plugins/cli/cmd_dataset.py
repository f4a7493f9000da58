"""``ionfield dataset show|export|import``: look at a ``DatasetData`` node, write it for NequIP, bring one in."""

from __future__ import annotations

import math

import click

from .params import LazyChoice, load_dataset
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


def _key(value: str) -> str | None:
    """A key option: ``none`` says the file has no such label."""
    return None if value.lower() == 'none' else value


#: Where the units, signs and orders of an import are defined (imported when the command runs).
IMPORTS = 'ionfield.models.data.imports'


@cmd_dataset.command('import')
@click.argument('path', metavar='FILE', type=click.Path(exists=True, dir_okay=False))
@click.option('--energy-key', default=None, help='Key of the total energy (default `energy`; `none`: absent).')
@click.option('--forces-key', default=None, help='Per-atom key of the forces (default `forces`).')
@click.option('--stress-key', default=None, help='Key of the stress (default `stress`; 9 or Voigt 6 numbers).')
@click.option('--virial-key', default=None, help='Key of a virial W = -V sigma (energy unit) instead of a stress.')
@click.option('--born-key', 'born_charges_key', default=None, help='Per-atom key of the Born charges (9 numbers).')
@click.option('--dielectric-key', default=None, help='Key of the eps_inf tensor (default `dielectric_tensor`).')
@click.option('--weight-key', default=None, help='Key of a per-frame loss weight (default: every frame 1).')
@click.option('--energy-unit', type=LazyChoice(IMPORTS, 'ENERGY_UNITS'), default=None, help='Default eV.')
@click.option('--forces-unit', type=LazyChoice(IMPORTS, 'FORCE_UNITS'), default=None, help='Default eV/Å.')
@click.option('--stress-unit', type=LazyChoice(IMPORTS, 'STRESS_UNITS'), default=None, help='Default eV/Å^3.')
@click.option(
    '--stress-sign',
    type=LazyChoice(IMPORTS, 'STRESS_SIGNS'),
    default=None,
    help='tensile (ASE, nequip; the default) or compressive (what VASP and QE print: positive = compressed).',
)
@click.option(
    '--born-order',
    type=LazyChoice(IMPORTS, 'BORN_ORDERS'),
    default=None,
    help='Index order of the Born charges: field_displacement (Z[a,b] = dF_b/d(eE_a), as ph.x and VASP write) '
    'or displacement_field. Needed when a tensor is not symmetric.',
)
@click.option('--asr-threshold', type=float, default=None, help='Flag frames whose sum rule is off by more (e).')
@click.option('--index', default=None, help="Frames to read, in ASE's syntax (default ':', all).")
@click.option('--label', 'node_label', default='', help='Label of the DatasetData node.')
@click.option('--dry-run', is_flag=True, help='Read and check the file, print what would be imported, store nothing.')
@PROFILE_OPTION
def dataset_import(path, node_label, dry_run, profile, **options):
    """Import labelled frames from FILE (extxyz or any format ASE reads) as a DatasetData.

    Labels are converted to eV, eV/Å, eV/Å^3 (tensile sign) and Born charges in the project's index order;
    the mapping is stored with the import, so the dataset can be traced to the file and made again. Energies
    of another code or setup have another reference: do not mix them with this project's labels in one
    training without a shift.
    """
    from aiida import orm

    from ionfield.models.data.imports import DatasetImportError, ImportSettings, read_frames
    from ionfield.workflows.data.imports import import_dataset

    given = {
        name: (_key(value) if name.endswith('_key') else value) for name, value in options.items() if value is not None
    }
    try:
        settings = ImportSettings.from_dict(given)
        _, report = read_frames(path, settings)
    except DatasetImportError as exception:
        raise click.UsageError(str(exception)) from exception
    _echo_import(report.to_dict())
    if dry_run:
        click.echo('dry run: nothing stored')
        return
    load_profile_or_fail(profile)
    results, node = import_dataset.run_get_node(
        file=orm.SinglefileData(path), settings=orm.Dict(settings.to_dict()), metadata={'label': node_label}
    )
    if not node.is_finished_ok:
        raise click.ClickException(f'import_dataset<{node.pk}> failed: [{node.exit_status}] {node.exit_message}')
    dataset = results['dataset']
    if node_label:
        dataset.label = node_label
    click.echo(f'DatasetData<{dataset.pk}> {dataset.uuid} from import_dataset<{node.pk}>')
    click.echo(f'Start active learning from it: ionfield al run STRUCTURE... --dataset {dataset.pk}')


def _echo_import(report: dict) -> None:
    counts = ', '.join(f'{name} {count}' for name, count in report['label_counts'].items())
    click.echo(f'{report["n_frames"]} frames; labelled: {counts}')
    if report['absent_labels']:
        click.echo(f'no frame has: {", ".join(report["absent_labels"])} (NaN there)')
    if report['born_order'] is not None:
        click.echo(
            f'Born charges: order {report["born_order"]} (largest antisymmetric part {report["max_antisymmetry"]:.4f} '
            f'e), sum rule off by up to {report["max_asr_violation"]:.4f} e, {report["n_asr_flagged"]} frame(s) flagged'
        )
    for label, conversion in report['conversions'].items():
        click.echo(f'  {label:<13} {conversion}')
