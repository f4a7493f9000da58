"""``ionfield campaign run|report|analyse``: transport campaigns and their analysis.

``run`` builds ``CampaignSettings`` from the options (validated here: a field in the wrong unit, an
unknown Z* mode or an equilibration longer than the run is a usage error and nothing is submitted)
and submits ``TransportCampaignWorkChain``. ``report`` writes the HTML report (and figures) of a
finished campaign, or rebuilds them from the conditions analysed so far. ``analyse`` runs the same
analysis on trajectory files, no AiiDA needed.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cmd_label import build_structures, parse_mesh
from .launch import submit_and_wait
from .params import load_model, load_process
from .root import cli
from .utils import (
    PROFILE_OPTION,
    job_metadata_options,
    job_options,
    load_profile_or_fail,
    load_runner_code,
    validated_settings,
)


@cli.group('campaign')
def cmd_campaign():
    """Transport campaigns: field MD over T x E x replicas, then D*, conductivity, Arrhenius, drift."""


def _concurrency(given: int | None) -> dict:
    """The ``max_concurrent_md`` override: the option if given, else a laptop's slots, else the protocol's."""
    from .defaults import max_concurrent_md

    value = given if given is not None else max_concurrent_md()
    return {} if value is None else {'max_concurrent_md': value}


def build_campaign_settings(values: tuple[str, ...], base: dict | None = None, **options) -> dict:
    from ionfield.models.transport.settings import CampaignSettings

    return validated_settings(CampaignSettings, values, base, what='campaign', **options)


@cmd_campaign.command('run')
@click.argument('structures', nargs=-1, required=True, metavar='STRUCTURE...')
@click.option('--model', 'model_id', required=True, help='ModelData or CommitteeData (pk/UUID, or a process).')
@click.option(
    '--protocol',
    default=None,
    help='Campaign protocol: fast (the laptop tutorial), moderate (default), precise (production).',
)
@click.option('--supercell', default=None, metavar='NxMxK', help='Run supercells of the structures, e.g. 3x3x3.')
@click.option('--vacancies', default=None, metavar='SPECIES[:N]', help='Remove N (default 1) atoms, e.g. Li:1.')
@click.option('-T', '--temperature', 'temperatures_K', multiple=True, type=float, help='K (repeatable).')
@click.option(
    '-E', '--field', 'fields', multiple=True, nargs=3, type=float, metavar='EX EY EZ', help='V/Å (repeatable).'
)
@click.option('--bec-mode', 'bec_modes', multiple=True, type=click.Choice(['full', 'diagonal', 'field_axis']))
@click.option('--replicas', type=click.IntRange(1), default=None, help='Independent runs per condition.')
@click.option('--steps', type=click.IntRange(10), default=None)
@click.option('--timestep', 'timestep_fs', type=float, default=None, help='fs.')
@click.option('--equilibration', 'equilibration_fs', type=float, default=None, help='fs dropped before analysis.')
@click.option('--seed', type=click.IntRange(0), default=None)
@click.option('--set', 'values', multiple=True, metavar='KEY=VALUE', help='Any campaign setting (YAML values).')
@click.option('--code', 'code_label', default=None, help='ionfield-md code (default: the one `ionfield setup` made).')
@click.option('--walltime', default=3600, show_default=True, type=click.IntRange(60), help='Seconds per MD run.')
@click.option(
    '--max-concurrent',
    type=click.IntRange(0),
    default=None,
    help='MD runs at a time (0: all; a scheduler queues them). Default: the cores of a laptop profile, else the '
    "protocol's value (0).",
)
@job_options
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds, then write the report.')
@click.option('-o', '--output', default=None, type=click.Path(path_type=Path), help='Report folder (with --wait).')
@PROFILE_OPTION
def campaign_run(
    structures,
    model_id,
    protocol,
    supercell,
    vacancies,
    values,
    code_label,
    walltime,
    max_concurrent,
    partition,
    account,
    qos,
    gpus,
    wait_s,
    output,
    profile,
    **options,
):
    """Run a transport campaign on STRUCTURE... (files or reference names such as alpha-Li3N).

    \b
    ionfield campaign run alpha-Li3N --supercell 3x3x3 --vacancies Li --model 12 \\
        -T 500 -T 600 -T 700 -E 0 0 0 -E 0 0 0.1 --bec-mode full --bec-mode diagonal --steps 20000
    """

    from ionfield.models.transport.settings import CampaignSettings
    from ionfield.plugins.data.model import CommitteeData
    from ionfield.workflows.transport.workchain import TransportCampaignWorkChain, validate_inputs

    load_profile_or_fail(profile)
    try:
        defaults = TransportCampaignWorkChain.get_protocol_inputs(protocol)
    except ValueError as exception:
        raise click.BadParameter(str(exception), param_hint='--protocol') from exception
    settings = build_campaign_settings(values, defaults['settings'], **options)
    model = load_model(model_id, committee=True, param_hint='--model')
    built = build_structures(list(structures), parse_mesh(supercell), 0, 0.0, 0)
    if vacancies:
        built = {key: _with_vacancies(structure, vacancies) for key, structure in built.items()}
    code = load_runner_code(code_label, 'ionfield-md', 'ionfield.md')
    request = {'partition': partition, 'account': account, 'qos': qos, 'gpus': gpus}
    builder = TransportCampaignWorkChain.get_builder_from_protocol(
        code,
        built,
        **{'committee' if isinstance(model, CommitteeData) else 'model': model},
        protocol=protocol,
        overrides={'settings': settings, **_concurrency(max_concurrent)},
        options=job_metadata_options(code, walltime, **request),
    )
    problem = validate_inputs(builder._inputs(prune=True))
    if problem:
        raise click.UsageError(problem)
    parsed = CampaignSettings.from_dict(settings)
    if not parsed.has_zero_field:
        click.secho('warning: no E = 0 control among the fields: no Arrhenius fit, no enhancement ratio', fg='yellow')
    runs = len(built) * len(parsed.runs()) * parsed.replicas
    at_once = builder.md.max_concurrent.value
    submit_and_wait(
        builder,
        wait_s,
        describe=f' ({runs} MD runs, {at_once or "all"} at a time)',
        report=lambda node: _write_report(node, output or Path(f'campaign_{node.pk}')),
        poll=5.0,
    )


def _with_vacancies(structure, spec: str):
    from aiida import orm

    from ionfield.workflows.structures.functions import make_vacancies

    species, _, count = spec.partition(':')
    try:
        count = int(count or 1)
    except ValueError:
        raise click.BadParameter(f'`{spec}` is not SPECIES[:N]', param_hint='--vacancies') from None
    result, node = make_vacancies.run_get_node(structure=structure, species=orm.Str(species), count=orm.Int(count))
    if not node.is_finished_ok:
        raise click.BadParameter(node.exit_message, param_hint='--vacancies')
    return result


def _write_report(node, folder: Path) -> Path:
    """The stored report and figures; for an unfinished or failed campaign, rebuilt from its analyses."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = node.outputs
    if 'report' in outputs:
        (folder / 'report.html').write_bytes(outputs.report.get_content(mode='rb'))
        for name in outputs.plots:
            (folder / f'{name}.png').write_bytes(outputs.plots[name].get_content(mode='rb'))
        summary = outputs.summary.get_dict()
    else:
        summary = _rebuild_report(node, folder)
    click.echo(f'report: {folder / "report.html"}')
    for warning in summary['warnings']:
        click.secho(f'warning: {warning}', fg='yellow')
    return folder / 'report.html'


def _rebuild_report(node, folder: Path) -> dict:
    """Summary, figures and report from the conditions a campaign has analysed so far."""
    from ionfield.models.transport.report import write_report
    from ionfield.workflows.transport.functions import curves_of

    analyses = [c for c in node.called if c.process_label == 'analyse_replicas' and c.is_finished_ok]
    if not analyses:
        raise click.ClickException(f'campaign {node.pk} has no analysed condition yet (state: {node.process_state})')
    conditions = [calc.outputs.result.get_dict() for calc in analyses]
    curves = {calc.outputs.result['key']: curves_of(calc.outputs.curves) for calc in analyses}
    note = f'campaign {node.pk} is not finished ok ({node.process_state.value}); partial report'
    summary, _, _ = write_report(conditions, curves, folder, f'Transport campaign {node.uuid[:8]} (partial)', note=note)
    return summary


@cmd_campaign.command('report')
@click.argument('pk', metavar='PK')
@click.option('-o', '--output', default=None, type=click.Path(path_type=Path), help='Folder (default campaign_PK).')
@PROFILE_OPTION
def campaign_report(pk, output, profile):
    """Write the HTML report and PNG figures of campaign PK (partial if it has not finished)."""
    from ionfield.workflows.transport.workchain import TransportCampaignWorkChain

    load_profile_or_fail(profile)
    node = load_process(pk, TransportCampaignWorkChain)
    _write_report(node, output or Path(f'campaign_{node.pk}'))


@cmd_campaign.command('analyse')
@click.argument('trajectories', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option('-T', '--temperature', 'temperature_K', type=float, required=True, help='K of the runs.')
@click.option('-E', '--field', nargs=3, type=float, default=(0.0, 0.0, 0.0), metavar='EX EY EZ', help='V/Å.')
@click.option('--bec-mode', default='full', type=click.Choice(['full', 'diagonal', 'field_axis']))
@click.option(
    '--set', 'values', multiple=True, metavar='KEY=VALUE', help='Analysis option, e.g. equilibration_fs=2000.'
)
@click.option('-o', '--output', default=Path('analysis'), type=click.Path(path_type=Path), help='Folder.')
def campaign_analyse(trajectories, temperature_K, field, bec_mode, values, output):
    """Analyse TRAJECTORIES (replicas of one condition: ionfield-md .h5 or .xyz files) without AiiDA."""
    import json

    from ionfield.models.md.trajectory import TrajectoryFileError, read_trajectory
    from ionfield.models.transport.condition import analyse_condition
    from ionfield.models.transport.replicas import AnalysisOptions, TransportInputError
    from ionfield.models.transport.report import write_report

    options = validated_settings(AnalysisOptions, values, None, what='analysis')
    try:
        runs = [read_trajectory(path) for path in trajectories]
        result = analyse_condition(runs, temperature_K, field, bec_mode, AnalysisOptions.from_dict(options))
    except (TrajectoryFileError, TransportInputError) as exception:
        raise click.ClickException(str(exception)) from exception
    output.mkdir(parents=True, exist_ok=True)
    (output / 'condition.json').write_text(json.dumps(result.summary, indent=1))
    curves = {result.summary['key']: result.curves}
    summary, _, report = write_report([result.summary], curves, output, 'Trajectory analysis')
    for species, values_ in result.summary['species'].items():
        d = values_['D']['xyz']
        number = f'{d["mean"]:.3g} ± {d["std"]:.2g} cm²/s' if d['status'] == 'ok' else f'not fitted: {d["reason"]}'
        click.echo(f'{species}: D* = {number}')
    for warning in summary['warnings']:
        click.secho(f'warning: {warning}', fg='yellow')
    click.echo(f'report: {report}')
