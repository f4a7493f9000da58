"""``ionfield md``: submit field MD (``MDWorkChain``) for a structure and a model or committee.

Thin: the options become ``MDSettings`` on top of the protocol's (validated here, so a field in the wrong
unit or a bad ensemble is a usage error and nothing is submitted); the structure, the model and the code
are loaded with clear errors; the builder is ``MDWorkChain.get_builder_from_protocol``'s; ``--continue``
extends a finished or interrupted run from its state.
"""

from __future__ import annotations

import click

from .cmd_label import build_structures, parse_mesh
from .launch import submit_and_wait
from .params import load_model, load_node
from .root import cli
from .utils import (
    PROFILE_OPTION,
    job_metadata_options,
    job_options,
    load_profile_or_fail,
    load_runner_code,
    validated_settings,
)


def build_md_settings(values: tuple[str, ...], base: dict | None = None, **options) -> dict:
    """``base`` (a run being continued), then ``--set`` pairs, then explicit options; validated by ``MDSettings``."""
    from ionfield.models.md.settings import MDSettings

    return validated_settings(MDSettings, values, base, what='MD', **options)


def _previous_run(identifier: str):
    """The ``MDCalculation`` to continue: the node itself, or the last one an ``MDWorkChain`` ran."""
    node = load_node(identifier, '--continue')
    if node.process_type == 'aiida.workflows:ionfield.md.base':
        runs = [child for child in node.called if child.process_type == 'aiida.calculations:ionfield.md']
        if not runs:
            raise click.BadParameter(f'MDWorkChain<{node.pk}> ran no MDCalculation yet', param_hint='--continue')
        node = max(runs, key=lambda child: child.ctime)
    if node.process_type != 'aiida.calculations:ionfield.md':
        raise click.BadParameter(f'node {node.pk} is not an MDWorkChain or MDCalculation', param_hint='--continue')
    if 'remote_folder' not in node.outputs:
        raise click.BadParameter(
            f'MDCalculation<{node.pk}> has no remote folder to continue from', param_hint='--continue'
        )
    return node


@cli.command('md')
@click.argument('structure', required=False, metavar='STRUCTURE')
@click.option('--supercell', default=None, metavar='NxMxK', help='Run a supercell of STRUCTURE, e.g. 3x3x3.')
@click.option(
    '--model', 'model_id', default=None, help='ModelData or CommitteeData (pk/UUID, or a process making one).'
)
@click.option('--protocol', default=None, help='MD protocol: fast (2 ps), moderate (default), precise (100 ps).')
@click.option('--field', nargs=3, type=float, default=None, metavar='EX EY EZ', help='Uniform field in V/Å.')
@click.option('--temperature', 'temperature_K', type=float, default=None, help='K.')
@click.option('--steps', type=click.IntRange(0), default=None, help='Total steps (with --continue: the new total).')
@click.option('--timestep', 'timestep_fs', type=float, default=None, help='fs.')
@click.option('--ensemble', type=click.Choice(['nve', 'langevin', 'bussi', 'nose_hoover', 'npt']), default=None)
@click.option('--bec-mode', type=click.Choice(['full', 'diagonal', 'field_axis']), default=None)
@click.option('--seed', type=click.IntRange(0), default=None)
@click.option('--set', 'values', multiple=True, metavar='KEY=VALUE', help='Any MD setting, e.g. log_every=50.')
@click.option('--continue', 'continue_id', default=None, metavar='PK', help='Extend this MDWorkChain or MDCalculation.')
@click.option('--compiled', is_flag=True, help='Run the AOTInductor-compiled model files.')
@click.option('--code', 'code_label', default=None, help='ionfield-md code (default: the one `ionfield setup` made).')
@click.option('--walltime', default=3600, show_default=True, type=click.IntRange(60), help='Seconds.')
@job_options
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds for the result.')
@PROFILE_OPTION
def cmd_md(
    structure,
    supercell,
    model_id,
    protocol,
    values,
    continue_id,
    compiled,
    code_label,
    walltime,
    partition,
    account,
    qos,
    gpus,
    wait_s,
    profile,
    **options,
):
    """Run field MD on STRUCTURE (a file or a reference name such as alpha-Li3N) with a trained model.

    \b
    ionfield md alpha-Li3N --supercell 3x3x3 --model 123 --field 0 0 0.1 --temperature 600 --steps 20000
    ionfield md cell.cif --model 456 --set max_force_deviation=0.3 --set monitor_every=20
    ionfield md --continue 789 --steps 40000
    """
    from aiida import orm

    from ionfield.plugins.calculations.md import validate_inputs
    from ionfield.plugins.data.model import CommitteeData
    from ionfield.workflows.md.workchain import MDWorkChain

    load_profile_or_fail(profile)
    try:
        base = MDWorkChain.get_protocol_inputs(protocol)['settings']
    except ValueError as exception:
        raise click.BadParameter(str(exception), param_hint='--protocol') from exception
    drivers, previous = {}, None
    if continue_id is not None:
        previous = _previous_run(continue_id)
        if structure is not None or supercell is not None:
            raise click.UsageError('--continue uses the structure of the earlier run; give no STRUCTURE or --supercell')
        start = previous.inputs.structure
        drivers = {port: previous.inputs[port] for port in ('model', 'committee') if port in previous.inputs}
        base = previous.inputs.settings.get_dict() if 'settings' in previous.inputs else {}
    else:
        if structure is None or model_id is None:
            raise click.UsageError('give STRUCTURE and --model (or --continue PK)')
        ((_, start),) = build_structures([structure], parse_mesh(supercell), 0, 0.0, 0).items()
    if model_id is not None:
        node = load_model(model_id, committee=True, param_hint='--model')
        drivers = {'committee' if isinstance(node, CommitteeData) else 'model': node}
    code = load_runner_code(code_label, 'ionfield-md', 'ionfield.md')
    request = {'partition': partition, 'account': account, 'qos': qos, 'gpus': gpus}
    builder = MDWorkChain.get_builder_from_protocol(
        code,
        start,
        **drivers,
        protocol=protocol,
        overrides={'settings': build_md_settings(values, base, **options)},
        options=job_metadata_options(code, walltime, **request),
    )
    builder.md.compiled = orm.Bool(compiled)
    if previous is not None:
        builder.md.parent_folder = previous.outputs.remote_folder
    problem = validate_inputs(builder.md._inputs(prune=True))
    if problem:
        raise click.UsageError(problem)
    submit_and_wait(builder, wait_s, report=echo_md_summary)


def echo_md_summary(node) -> None:
    summary = node.outputs.summary.get_dict() if 'summary' in node.outputs else {}
    status = 'completed' if node.is_finished_ok else f'[{node.exit_status}] {node.exit_message}'
    click.echo(f'MDWorkChain<{node.pk}>: {status}; step {summary.get("step")}, {summary.get("wall_time_s")} s')
