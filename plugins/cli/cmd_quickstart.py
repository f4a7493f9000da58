"""``ionfield quickstart``: the README's main job on the laptop default.

A small active-learning run on alpha-Li3N through the daemon: the structure check, then
``ActiveLearningWorkChain`` with QE (``fast`` protocol) labels, a 2-member committee with a
Born-charge head, and field-MD exploration at two temperatures with and without a field. It prints
the report of every iteration and fails loudly if a step does not finish. About 20-25 minutes on 2 cores
with the defaults; ``--max-iterations 1 --bec-fraction 0`` is the short version CI runs.
"""

from __future__ import annotations

import click

from .defaults import label_overrides, max_concurrent_md, qe_codes
from .launch import finish, submit
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail, load_runner_code

#: The main job is the `fast` protocol of active learning (workflows/active_learning/protocol.yaml).
QUICKSTART_PROTOCOL = 'fast'


@cli.command('quickstart')
@PROFILE_OPTION
@click.option('--max-iterations', default=None, type=click.IntRange(1), help="Iterations at most (the protocol's: 3).")
@click.option(
    '--bec-fraction',
    default=None,
    type=click.FloatRange(0, 1),
    help="Share of each selection that gets DFPT Born charges (the protocol's: 0.25; 4.5 min per distorted Li3N "
    'frame on 2 cores).',
)
@click.option('--timeout', default=3600.0, show_default=True, type=float, help='Seconds to wait for each step.')
def cmd_quickstart(profile, max_iterations, bec_fraction, timeout):
    """Run the main job (a small Li3N active-learning run) on the daemon and print what it produced."""
    import numpy as np
    from aiida import orm

    from ionfield.models.structures.reference import get_reference_structure
    from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain
    from ionfield.workflows.structures.check import StructureCheckWorkChain

    from .cmd_al import echo_report

    loaded = load_profile_or_fail(profile)

    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'), label='alpha-Li3N')
    check = submit(StructureCheckWorkChain, structure=structure)
    click.echo(f'[{loaded.name}] 1. StructureCheckWorkChain<{check.pk}> for alpha-Li3N')
    finish(check, 'StructureCheckWorkChain', timeout)
    summary = check.outputs.summary.get_dict()
    click.echo(
        f'alpha-Li3N: {summary["formula"]}, {summary["natoms"]} atoms, density {summary["density"]:.3f} g/cm^3, '
        f'shortest Li-N {summary["min_distance"]:.3f} Å'
    )

    given = {'max_iterations': max_iterations, 'bec_fraction': bec_fraction}
    overrides = {'settings': {key: value for key, value in given.items() if value is not None}}
    if max_concurrent_md() is not None:
        overrides['max_concurrent_md'] = max_concurrent_md()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        {'li3n': structure},
        train_code=load_runner_code(None, 'ionfield-train', 'ionfield.train'),
        md_code=load_runner_code(None, 'ionfield-md', 'ionfield.md'),
        protocol=QUICKSTART_PROTOCOL,
        overrides=overrides,
        label_overrides=label_overrides(),
        **qe_codes(loaded.name),
    )
    run = submit(builder)
    click.echo(
        f'[{loaded.name}] 2. ActiveLearningWorkChain<{run.pk}>: QE labels -> 2-member committee -> field MD '
        f'-> selection, up to {builder.settings["max_iterations"]} iteration(s); '
        f'follow it with `verdi process report {run.pk}`'
    )
    finish(run, 'ActiveLearningWorkChain', timeout, report=echo_report, poll=5.0)
    initial = run.outputs.datasets.initial.get_dataset()
    frame = next(frame for frame in initial if frame.has_born_charges)
    click.echo('Born charges of alpha-Li3N (DFPT), diagonal (xx yy zz) in e:')
    for symbol, tensor in zip(frame.species, frame.born_charges, strict=True):
        click.echo(f'  {symbol:<3}' + ''.join(f'{value:8.3f}' for value in np.diag(tensor)))
    click.echo(f'Provenance: verdi -p {loaded.name} process show {run.pk}')
    click.echo(f'Report:     ionfield al report -p {loaded.name} {run.pk} --plot li3n_al.png')
