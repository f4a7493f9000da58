"""``ionfield quickstart``: the README's main job on the laptop default.

It runs the deepest stage of the pipeline that exists in this version, on alpha-Li3N, through the
daemon, and fails loudly if any step does not finish. Today that is the structure check followed by
labelling (pw.x SCF + ph.x DFPT, ``fast`` protocol); committee training, field MD and the transport
campaign extend it as they land.
"""

from __future__ import annotations

import click

from .cmd_check import wait_for
from .cmd_label import echo_summary
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail


def _wait_ok(node, timeout: float) -> None:
    name = f'{node.process_label}<{node.pk}>'
    if not wait_for([node], timeout, poll=2.0):
        raise click.ClickException(f'{name} did not finish in {timeout:.0f} s (it keeps running): `ionfield doctor`')
    if not node.is_finished_ok:
        raise click.ClickException(f'{name} failed: [{node.exit_status}] {node.exit_message}')


@cli.command('quickstart')
@PROFILE_OPTION
@click.option('--timeout', default=900.0, show_default=True, type=float, help='Seconds to wait for each step.')
def cmd_quickstart(profile, timeout):
    """Run the main job (a small Li3N campaign) on the daemon and print what it produced."""
    import numpy as np
    from aiida import orm
    from aiida.common.exceptions import InvalidOperation
    from aiida.engine import submit as submit_process

    from ionfield.models.reference_structures import get_reference_structure
    from ionfield.plugins.setup.settings import get_settings
    from ionfield.workflows.label.workchain import LabelWorkChain
    from ionfield.workflows.structure_check import StructureCheckWorkChain

    loaded = load_profile_or_fail(profile)

    def submit(*args, **kwargs):
        try:
            return submit_process(*args, **kwargs)
        except InvalidOperation as exception:
            raise click.ClickException(f'{exception} Start it with `verdi -p {loaded.name} daemon start`.') from None

    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'), label='alpha-Li3N')
    check = submit(StructureCheckWorkChain, structure=structure)
    click.echo(f'[{loaded.name}] 1. StructureCheckWorkChain<{check.pk}> for alpha-Li3N')
    _wait_ok(check, timeout)
    summary = check.outputs.summary.get_dict()
    click.echo(
        f'alpha-Li3N: {summary["formula"]}, {summary["natoms"]} atoms, density {summary["density"]:.3f} g/cm^3, '
        f'shortest Li-N {summary["min_distance"]:.3f} Å'
    )

    settings = get_settings()
    codes = settings.get('codes') or {}
    if not {'pw', 'ph'} <= set(codes):
        raise click.ClickException(f'no pw/ph codes in `{loaded.name}`: run `ionfield setup laptop -p {loaded.name}`')
    overrides = {'pseudo_family': settings['pseudo_family']} if settings.get('pseudo_family') else {}
    builder = LabelWorkChain.get_builder_from_protocol(
        {'li3n': structure}, protocol='fast', overrides=overrides, pw_code=codes['pw'], ph_code=codes['ph']
    )
    builder.max_concurrent = orm.Int(1)
    label = submit(builder)
    click.echo(f'[{loaded.name}] 2. LabelWorkChain<{label.pk}>: pw.x SCF + ph.x DFPT (fast protocol)')
    _wait_ok(label, timeout)
    echo_summary(label)
    frame = label.outputs.dataset.get_dataset()[0]
    click.echo(f'energy {frame.energy:.4f} eV, max |F| {np.abs(frame.forces).max():.4f} eV/Å')
    click.echo('Born charges, diagonal (xx yy zz) in e:')
    for symbol, tensor in zip(frame.species, frame.born_charges, strict=True):
        click.echo(f'  {symbol:<3}' + ''.join(f'{value:8.3f}' for value in np.diag(tensor)))
    click.echo('eps_inf diagonal: ' + ' '.join(f'{value:.3f}' for value in np.diag(frame.eps_inf)))
    click.echo(f'Provenance: verdi -p {loaded.name} process show {label.pk}')
    click.echo(f'Dataset:    ionfield dataset show -p {loaded.name} {label.pk} --frames')
