"""``ionfield quickstart``: the README's main job on the laptop default.

It runs the deepest stage of the pipeline that exists in this version, on alpha-Li3N, through the
daemon, and fails loudly if any step does not finish. Today that is the structure check; the later
stages (labelling, committee training, field MD, the transport campaign) extend it.
"""

from __future__ import annotations

import click

from .cmd_check import wait_for
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail


@cli.command('quickstart')
@PROFILE_OPTION
@click.option('--timeout', default=600.0, show_default=True, type=float, help='Seconds to wait for the daemon.')
def cmd_quickstart(profile, timeout):
    """Run the main job (a small Li3N campaign) on the daemon and print what it produced."""
    from aiida import orm
    from aiida.engine import submit

    from ionfield.models.reference_structures import get_reference_structure
    from ionfield.workflows.structure_check import StructureCheckWorkChain

    loaded = load_profile_or_fail(profile)
    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'))
    node = submit(StructureCheckWorkChain, structure=structure)
    click.echo(f'[{loaded.name}] submitted StructureCheckWorkChain<{node.pk}> for alpha-Li3N')
    if not wait_for([node], timeout):
        raise click.ClickException(
            f'StructureCheckWorkChain<{node.pk}> did not finish in {timeout:.0f} s: `ionfield doctor`'
        )
    if not node.is_finished_ok:
        raise click.ClickException(
            f'StructureCheckWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}'
        )
    summary = node.outputs.summary.get_dict()
    click.echo(
        f'alpha-Li3N: {summary["formula"]}, {summary["natoms"]} atoms, density {summary["density"]:.3f} g/cm^3, '
        f'shortest Li-N {summary["min_distance"]:.3f} Å'
    )
    click.echo(f'Provenance: verdi -p {loaded.name} process show {node.pk}')
