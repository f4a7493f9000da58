"""``ionfield al run|restart|report``: active learning from the command line.

Thin: options become ``ActiveLearningSettings`` and ``TrainingSettings`` (validated here, so a bad
value is a usage error and nothing is submitted), the builder comes from
``ActiveLearningWorkChain.get_builder_from_protocol`` and the workchain's own input validation
(trust levels, grid, labelability of the seeds, budget) runs before the submission.
"""

from __future__ import annotations

import click

from .cmd_label import build_structures, parse_mesh
from .cmd_train import load_train_code
from .defaults import label_overrides, max_concurrent_labels, max_concurrent_md, qe_codes
from .launch import submit_and_wait
from .params import load_dataset, load_process
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail, load_runner_code, validated_settings


@cli.group('al')
def cmd_al():
    """Active learning: label -> learn -> explore -> select, until the committee is trusted."""


def build_al_settings(values: tuple[str, ...], base: dict | None = None, **options) -> dict:
    """``base``, then ``--set`` pairs, then explicit options; validated by ``ActiveLearningSettings``."""
    from ionfield.models.active_learning.settings import ActiveLearningSettings

    return validated_settings(ActiveLearningSettings, values, base, what='active-learning', **options)


def _submit_and_wait(builder, wait_s: float):
    from ionfield.workflows.active_learning.workchain import validate_inputs

    problem = validate_inputs(builder._inputs(prune=True))
    if problem:
        raise click.UsageError(problem)
    return submit_and_wait(builder, wait_s, report=echo_report, poll=5.0)


@cmd_al.command('run')
@click.argument('structures', nargs=-1, required=True)
@click.option('--supercell', default=None, help='Supercell of every structure, e.g. 2x2x1.')
@click.option(
    '--protocol',
    default=None,
    help='Active-learning protocol: fast (a 2-core laptop), moderate (default), precise (a cluster).',
)
@click.option('--label-protocol', default=None, help="The labelling engine's protocol (default: the protocol's).")
@click.option('--temperature', 'temperatures_K', multiple=True, type=float, help='K (repeat for a grid).')
@click.option('--field', 'fields', multiple=True, nargs=3, type=float, metavar='EX EY EZ', help='V/Å (repeat).')
@click.option('--md-steps', type=click.IntRange(1), default=None, help='Steps of every exploration run.')
@click.option('--force-trust', nargs=2, type=float, default=None, metavar='LO HI', help='eV/Å.')
@click.option('--bec-trust', nargs=2, type=float, default=None, metavar='LO HI', help='e.')
@click.option('--max-selected', type=int, default=None, help='Frames labelled per iteration.')
@click.option('--max-labels', type=int, default=None, help='DFT labels in all (the budget).')
@click.option('--max-iterations', type=int, default=None)
@click.option('--bec-fraction', type=float, default=None, help='Share of every labelled batch that gets Z*.')
@click.option('--seed', type=click.IntRange(0), default=None)
@click.option('--set', 'values', multiple=True, metavar='KEY=VALUE', help='Any active-learning setting.')
@click.option('--train-set', 'train_values', multiple=True, metavar='KEY=VALUE', help='Any training setting.')
@click.option('-n', '--committee-size', default=None, type=click.IntRange(2), help="Default: the protocol's.")
@click.option(
    '--dataset', 'dataset_id', default=None, help='Start from this DatasetData (pk/UUID): no initial labelling.'
)
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds for the result.')
@PROFILE_OPTION
def cmd_al_run(
    structures,
    supercell,
    protocol,
    label_protocol,
    values,
    train_values,
    committee_size,
    dataset_id,
    wait_s,
    profile,
    force_trust,
    bec_trust,
    fields,
    **options,
):
    """Run active learning from STRUCTURE files or reference names (e.g. alpha-Li3N).

    \b
    ionfield al run alpha-Li3N --temperature 300 --temperature 600 --field 0 0 0 --field 0 0 0.05
    ionfield al run cell.cif --supercell 2x2x2 --force-trust 0.05 0.3 --max-labels 200 --set md_steps=2000
    """

    from ionfield.models.train.settings import TrainingSettings
    from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain

    loaded = load_profile_or_fail(profile)
    try:
        defaults = ActiveLearningWorkChain.get_protocol_inputs(protocol)
    except ValueError as exception:
        raise click.BadParameter(str(exception), param_hint='--protocol') from exception
    options.update(force_trust=force_trust, bec_trust=bec_trust, fields=[list(f) for f in fields] or None)
    overrides = {
        'settings': build_al_settings(values, defaults['settings'], **options),
        'training': validated_settings(
            TrainingSettings,
            train_values,
            defaults['training'],
            what='training',
            set_option='--train-set',
        ),
    }
    if committee_size is not None:
        overrides['committee_size'] = committee_size
    if label_protocol is not None:
        overrides['label_protocol'] = label_protocol
    if max_concurrent_labels() is not None:
        overrides['max_concurrent_labels'] = max_concurrent_labels()
    if max_concurrent_md() is not None:
        overrides['max_concurrent_md'] = max_concurrent_md()
    nodes = build_structures(structures, parse_mesh(supercell), 0, 0.0, 0)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        nodes,
        train_code=load_train_code(None),
        md_code=load_runner_code(None, 'ionfield-md', 'ionfield.md'),
        protocol=protocol,
        overrides=overrides,
        label_overrides=label_overrides(),
        **qe_codes(loaded.name),
    )
    if dataset_id is not None:
        builder.dataset = load_dataset(dataset_id)
    _submit_and_wait(builder, wait_s)


@cmd_al.command('restart')
@click.argument('identifier', metavar='PK')
@click.option('--iteration', type=click.IntRange(0), default=None, help='Continue after this one (default: the last).')
@click.option('--without-later-labels', is_flag=True, help='Drop frames labelled after that iteration.')
@click.option('--set', 'values', multiple=True, metavar='KEY=VALUE', help='Change a setting, e.g. max_iterations=8.')
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds for the result.')
@PROFILE_OPTION
def cmd_al_restart(identifier, iteration, without_later_labels, values, wait_s, profile):
    """Continue the active-learning run PK from a finished iteration; no finished DFT label is lost."""
    from ionfield.workflows.active_learning.restart import RestartError, restart_builder
    from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain

    load_profile_or_fail(profile)
    node = load_process(identifier, ActiveLearningWorkChain)
    base = node.inputs.settings.get_dict() if 'settings' in node.inputs else {}
    settings = build_al_settings(values, base)
    try:
        builder, after = restart_builder(node, iteration, later_labels=not without_later_labels, settings=settings)
    except RestartError as exception:
        raise click.ClickException(str(exception)) from exception
    frames = builder.dataset.n_frames if 'dataset' in builder else 0
    click.echo(f'restarting ActiveLearningWorkChain<{node.pk}> after iteration {after} with {frames} labelled frames')
    _submit_and_wait(builder, wait_s)


def echo_report(node) -> None:
    from ionfield.models.active_learning.report import format_table
    from ionfield.workflows.active_learning.restart import finished_history

    history = node.outputs.history.get_list() if 'history' in node.outputs else finished_history(node)
    state = node.process_state.value if node.process_state else 'unknown'
    status = f'[{node.exit_status}] {node.exit_message or ""}' if node.is_finished else state
    click.echo(f'ActiveLearningWorkChain<{node.pk}>: {status}')
    click.echo(format_table(history))
    ends = [entry for entry in history if 'stop_reason' in entry]
    if ends:
        click.echo(f'stopped: {ends[-1]["stop_reason"]}: {ends[-1]["message"]}')
    if 'dataset' in node.outputs:
        click.echo(f'dataset: DatasetData<{node.outputs.dataset.pk}> ({node.outputs.dataset.n_frames} frames)')
    if 'committee' in node.outputs:
        click.echo(f'committee: CommitteeData<{node.outputs.committee.pk}>')


@cmd_al.command('report')
@click.argument('identifier', metavar='PK')
@click.option('--plot', 'plot_path', default=None, type=click.Path(dir_okay=False), help='Write learning curves (PNG).')
@PROFILE_OPTION
def cmd_al_report(identifier, plot_path, profile):
    """Per iteration: dataset, shares, errors on new labels, trust levels, timings of the active-learning run PK."""
    from ionfield.models.active_learning.report import plot_history
    from ionfield.workflows.active_learning.restart import finished_history
    from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain

    load_profile_or_fail(profile)
    node = load_process(identifier, ActiveLearningWorkChain)
    echo_report(node)
    if plot_path:
        history = finished_history(node)
        if not history:
            raise click.ClickException('no finished iteration to plot yet')
        click.echo(f'plot: {plot_history(history, plot_path)}')
