"""``ionfield run STRUCTURE...``: the whole pipeline, from a structure to a report of transport numbers.

Builds ``PipelineWorkChain`` from its protocol (``fast`` is the README main job on a laptop) with the codes and
pseudopotential family of the profile, checks everything that can be known wrong before anything runs (a
structure without the mobile species, a defect that cannot be made insulating, a campaign outside the explored
grid, a zero DFPT budget under a field), and submits it. ``--restart PK`` goes on from the last finished stage
of an earlier run, losing no DFT label.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cmd_label import build_structures, parse_mesh
from .defaults import label_overrides, max_concurrent_labels, max_concurrent_md, qe_codes
from .launch import submit_and_wait
from .params import load_dataset, load_process
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail, load_runner_code, parse_key_values


@cli.command('run')
@click.argument('structures', nargs=-1, metavar='STRUCTURE...')
@click.option('--protocol', default=None, help='fast (the README main job, a laptop), moderate (default), precise.')
@click.option('--mobile', 'mobile_species', default=None, help='The mobile species (default Li).')
@click.option('--supercell', default=None, metavar='NxMxK', help="The campaign's cell (the protocol's: 3x3x3).")
@click.option(
    '--explore-supercell', default=None, metavar='NxMxK', help='The explored defect cell (default: the campaign cell).'
)
@click.option(
    '--defect',
    type=click.Choice(['charged', 'frenkel', 'schottky', 'none']),
    default=None,
    help='How carriers are made so that DFT sees an insulator (default: charged, on a compensating background).',
)
@click.option('--defect-count', type=click.IntRange(0), default=None, help='Vacancies, pairs or formula units.')
@click.option(
    '--dataset', 'dataset_id', default=None, help='Start from this DatasetData (e.g. `ionfield dataset import`).'
)
@click.option(
    '--set',
    'values',
    multiple=True,
    metavar='KEY=VALUE',
    help='Any key of the pipeline protocol, dotted (YAML values), e.g. active_learning.settings.max_iterations=2 or '
    'campaign.settings.replicas=4.',
)
@click.option('--override-validation', is_flag=True, help='Run the campaign even when validation fails (reported).')
@click.option(
    '--restart', 'restart_id', default=None, help='Go on with this PipelineWorkChain from its last finished stage.'
)
@click.option('--dry-run', is_flag=True, help='Check the inputs and print the plan; submit nothing.')
@click.option(
    '--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds, print the stages, write the report.'
)
@click.option('-o', '--output', default=None, type=click.Path(path_type=Path), help='Report file (with --wait).')
@PROFILE_OPTION
def cmd_run(
    structures, protocol, dataset_id, values, override_validation, restart_id, dry_run, wait_s, output, profile, **given
):
    """Explore, validate and simulate STRUCTURE... (files or reference names such as alpha-Li3N).

    \b
    ionfield run alpha-Li3N --protocol fast --wait 7200 -o li3n.html
    ionfield run --restart 1234 --override-validation
    """
    from ionfield.models.pipeline.settings import PipelineInputError, PipelineSettings
    from ionfield.workflows.pipeline.workchain import PipelineWorkChain, validate_inputs

    loaded = load_profile_or_fail(profile)
    defect, count = given.pop('defect'), given.pop('defect_count')
    settings = {key: value for key, value in given.items() if value is not None}
    for name in ('supercell', 'explore_supercell'):
        if name in settings:
            settings[name] = parse_mesh(settings[name])
    if defect is not None or count is not None:
        settings['defect'] = {'mode': defect or 'charged', 'count': 1 if count is None else count}
    if override_validation:
        settings['override_validation'] = True

    if restart_id is not None:
        if structures or values:
            raise click.UsageError(
                '--restart goes on with the structures and protocol of the earlier run: give no STRUCTURE or --set'
            )
        from ionfield.workflows.pipeline.restart import RestartError, restart_builder

        node = load_process(restart_id, PipelineWorkChain, param_hint='--restart')
        try:
            builder, reused = restart_builder(node, settings=settings)
        except RestartError as exception:
            raise click.BadParameter(str(exception), param_hint='--restart') from exception
        click.echo(f'PipelineWorkChain<{node.pk}>: reusing {", ".join(reused) or "nothing (every stage reruns)"}')
    else:
        if not structures:
            raise click.UsageError('give at least one STRUCTURE (a file or a reference name), or --restart PK')
        from ionfield.workflows.protocols import recursive_merge

        pairs = parse_key_values(values, '--set')
        try:
            defaults = PipelineWorkChain.get_protocol_inputs(protocol, pairs)
            PipelineSettings.from_dict({**defaults['settings'], **settings})
        except ValueError as exception:
            raise click.BadParameter(str(exception), param_hint='--protocol / --set / settings') from exception
        built = build_structures(list(structures), None, 0, 0.0, 0)
        references = _references(structures, built)
        concurrency = max_concurrent_labels()
        overrides = recursive_merge(pairs, {'settings': settings})
        if concurrency:
            for stage in ('active_learning', 'validation'):
                overrides[stage] = {**defaults[stage], 'max_concurrent_labels': concurrency}
        md_slots = max_concurrent_md()
        if md_slots:
            for stage in ('active_learning', 'campaign'):
                overrides[stage] = {**overrides.get(stage, defaults[stage]), 'max_concurrent_md': md_slots}
        try:
            builder = PipelineWorkChain.get_builder_from_protocol(
                built,
                train_code=load_runner_code(None, 'ionfield-train', 'ionfield.train'),
                md_code=load_runner_code(None, 'ionfield-md', 'ionfield.md'),
                protocol=protocol,
                overrides=overrides,
                label_overrides=label_overrides(),
                references=references,
                **qe_codes(loaded.name),
            )
        except (PipelineInputError, ValueError) as exception:
            raise click.UsageError(str(exception)) from exception
        if dataset_id:
            builder.active_learning.dataset = load_dataset(dataset_id, param_hint='--dataset')
    problem = validate_inputs(builder._inputs(prune=True))
    if problem:
        raise click.UsageError(problem)
    echo_plan(builder)
    if dry_run:
        return
    submit_and_wait(builder, wait_s, report=lambda node: echo_stages(node, output), poll=10.0)


def _references(arguments, built) -> dict[str, str]:
    """Structure key -> reference structure name, for the arguments that named one (published values)."""
    from ionfield.models.structures.reference import REFERENCE_STRUCTURES

    references = {}
    for argument, key in zip(arguments, built, strict=False):
        if argument in REFERENCE_STRUCTURES and not Path(argument).is_file():
            references[key] = argument
    return references


def echo_plan(builder) -> None:
    """What will run: the systems, the explored grid and the campaign grid."""
    settings = builder.settings.get_dict()
    explored = builder.active_learning.settings.get_dict()
    campaign = builder.campaign.settings.get_dict()
    defect = settings['defect']
    click.echo(
        f'systems: campaign cell {"x".join(map(str, settings["supercell"]))}, explored cell '
        f'{"x".join(map(str, settings["explore_supercell"] or settings["supercell"]))}'
        + (' and the primitive cell' if settings['explore_primitive'] else '')
        + f'; defect {defect["mode"]} x{defect.get("count", 1)} {settings["mobile_species"]}'
    )
    click.echo(
        f'explored: T {explored["temperatures_K"]} K x E {explored["fields"]} V/Å, up to '
        f'{explored["max_iterations"]} iteration(s); campaign: T {campaign["temperatures_K"]} K x E '
        f'{campaign["fields"]} V/Å x {campaign["bec_modes"]} x {campaign["replicas"]} replica(s) of '
        f'{campaign["steps"]} steps'
    )


def echo_stages(node, output: Path | None) -> None:
    """The stages of a finished (or failed) pipeline, and its report written to ``output``."""
    if 'stages' in node.outputs:
        for stage in node.outputs.stages.get_list():
            wall = f'{stage["wall_s"]:.0f} s' if 'wall_s' in stage else ''
            click.echo(
                f'{stage["stage"]:<16} {stage["status"]:<9} {stage.get("process", ""):<36} {wall} {stage["message"]}'
            )
    if 'report' in node.outputs:
        path = output or Path(f'pipeline_{node.pk}.html')
        path.write_text(node.outputs.report.get_content())
        click.echo(f'report: {path}')
