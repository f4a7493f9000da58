"""``ionfield train|committee|model``: submit the Learn stage and look at the models it made.

Thin: the options become ``TrainingSettings`` (validated here, so a bad value is a usage error
and nothing is submitted), the inputs of ``TrainWorkChain``/``CommitteeWorkChain`` are built and
submitted, and ``ModelData``/``CommitteeData`` nodes are printed or written to a file.
"""

from __future__ import annotations

import math

import click

from .launch import submit_and_wait
from .params import load_committee, load_dataset, load_model
from .root import cli
from .utils import (
    PROFILE_OPTION,
    job_metadata_options,
    job_options,
    load_profile_or_fail,
    load_runner_code,
    parse_key_values,
    validated_settings,
)

DEFAULT_TRAIN_CODE = 'ionfield-train@localhost'
SIZES = ('small', 'medium', 'large')

#: Test metrics shown for a model: ``(attribute key, label with unit)``.
METRICS = (
    ('energy_mae_mev_per_atom', 'E MAE (meV/atom)'),
    ('forces_mae_mev_per_a', 'F MAE (meV/Å)'),
    ('forces_rmse_mev_per_a', 'F RMSE (meV/Å)'),
    ('stress_mae_mev_per_a3', 'S MAE (meV/Å³)'),
    ('bec_mae_e', 'Z* MAE (e)'),
    ('bec_rmse_e', 'Z* RMSE (e)'),
    ('epochs', 'epochs'),
)


# --- building inputs ---------------------------------------------------------------------


def training_overrides(values: tuple[str, ...], protocol: str | None, **options) -> dict:
    """The training keys given on the command line (``--set`` pairs and options), checked on top of the
    protocol's: only these go to the builder, so a warm start inherits everything else from its parent."""
    from ionfield.models.train.settings import TrainingSettings
    from ionfield.workflows.train.workchain import TrainWorkChain

    try:
        defaults = TrainWorkChain.get_protocol_inputs(protocol)['training']
    except ValueError as exception:
        raise click.BadParameter(str(exception), param_hint='--protocol') from exception
    full = validated_settings(TrainingSettings, values, defaults, what='training', **options)
    given = set(parse_key_values(values, '--set')) | {key for key, value in options.items() if value is not None}
    return {key: full[key] for key in given}


def load_train_code(label: str | None):
    """The ``ionfield-train`` code: ``--code``, else the one ``ionfield setup`` recorded, else the localhost one."""
    return load_runner_code(label, 'ionfield-train', 'ionfield.train')


# --- printing ----------------------------------------------------------------------------


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def echo_model(model) -> None:
    click.echo(f'ModelData<{model.pk}> {model.uuid}')
    rows = [
        ('species', ', '.join(model.species)),
        ('r_max (Å)', _fmt(model.r_max)),
        ('has_bec', model.has_bec),
        ('seed', _fmt(model.seed)),
        ('dataset', model.dataset_uuid or 'n/a'),
        ('sha256', model.sha256),
        ('compiled', model.compiled),
    ]
    metrics = model.metrics or {}
    rows += [(key, _fmt(metrics.get(key))) for key, _ in METRICS]
    for label, value in rows:
        click.echo(f'  {label:<24} {value}')


def echo_committee(committee) -> None:
    click.echo(f'CommitteeData<{committee.pk}> {committee.uuid}')
    click.echo(f'  {"size":<24} {committee.size}')
    click.echo(f'  {"species":<24} {", ".join(committee.species)}')
    click.echo(f'  {"has_bec":<24} {committee.has_bec}')
    click.echo(f'  {"datasets":<24} {", ".join(committee.base.attributes.get("dataset_uuids") or []) or "n/a"}')
    widths = [max(len(label), 8) for _, label in METRICS]
    header = ''.join(f' {label:>{width}}' for (_, label), width in zip(METRICS, widths, strict=True))
    click.echo(f'  {"#":>3} {"pk":>7} {"seed":>5}{header}')
    for index, member in enumerate(committee.members):
        metrics = member.metrics or {}
        values = ''.join(f' {_fmt(metrics.get(key)):>{width}}' for (key, _), width in zip(METRICS, widths, strict=True))
        click.echo(f'  {index:>3} {member.pk:>7} {_fmt(member.seed):>5}{values}')


# --- commands ----------------------------------------------------------------------------


def training_options(function):
    """Options shared by ``train`` and ``committee`` (after the command's own)."""
    options = [
        click.option(
            '--protocol',
            default=None,
            help='Training protocol: fast (a laptop), moderate (default), precise (a GPU node).',
        ),
        click.option('--epochs', type=click.IntRange(1), default=None, help='Maximum number of epochs (max_epochs).'),
        click.option(
            '--bec/--no-bec',
            default=None,
            help='Train a Born-charge (Z*) head, or not (default: with one, as TrainingSettings).',
        ),
        click.option(
            '--set',
            'set_values',
            multiple=True,
            metavar='KEY=VALUE',
            help='Any TrainingSettings field, e.g. learning_rate=0.005 or batch_size=8 (repeatable; VALUE is YAML).',
        ),
        click.option(
            '--compile', 'compile_model', is_flag=True, help='Also AOTInductor-compile the model (.nequip.pt2).'
        ),
        click.option(
            '--code',
            'code_label',
            default=None,
            metavar='LABEL',
            help=f'ionfield-train code (default: the one `ionfield setup` recorded, else {DEFAULT_TRAIN_CODE}).',
        ),
        click.option(
            '--walltime',
            default=None,
            type=click.IntRange(60),
            metavar='SECONDS',
            help='Wall-time limit of each training job (metadata.options.max_wallclock_seconds).',
        ),
        click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds for the result.'),
        PROFILE_OPTION,
    ]
    for option in reversed(options):
        function = option(function)
    return job_options(function)


@cli.command('train')
@click.argument('identifier', metavar='DATASET')
@click.option(
    '--size',
    '--model-size',
    'model_size',
    type=click.Choice(SIZES),
    default=None,
    help='Model size (default: small, as TrainingSettings).',
)
@click.option('--seed', type=click.IntRange(0), default=None, help='Seed of weights, split and shuffling (default 0).')
@click.option('--parent', 'parent', default=None, metavar='MODEL', help='Warm-start from this ModelData (pk/UUID).')
@training_options
def cmd_train(
    identifier,
    model_size,
    seed,
    parent,
    protocol,
    epochs,
    bec,
    set_values,
    compile_model,
    code_label,
    walltime,
    wait_s,
    profile,
    **request,
):
    """Train one model on DATASET (a DatasetData or a LabelWorkChain pk/UUID) with TrainWorkChain."""
    from aiida import orm

    from ionfield.models.train.settings import TrainingSettings
    from ionfield.workflows.train.workchain import TrainWorkChain

    load_profile_or_fail(profile)
    dataset = load_dataset(identifier)
    given = training_overrides(set_values, protocol, size=model_size, seed=seed, max_epochs=epochs, bec=bec)
    parent_model = load_model(parent, param_hint='--parent') if parent is not None else None
    code = load_train_code(code_label)
    builder = TrainWorkChain.get_builder_from_protocol(
        code,
        dataset,
        protocol,
        overrides={'training': given},
        parent_model=parent_model,
        options=job_metadata_options(code, walltime, **request),
    )
    builder.train.compile = orm.Bool(compile_model)
    settings = TrainingSettings.from_dict(
        {**(parent_model.base.attributes.get('settings', {}) if parent_model else {}), **builder.train.settings}
    )
    submit_and_wait(
        builder,
        wait_s,
        describe=f' on DatasetData<{dataset.pk}> (size {settings.size}, seed {settings.seed}, bec {settings.bec})',
        report=lambda node: echo_model(node.outputs.model),
    )


@cli.command('committee')
@click.argument('identifier', metavar='DATASET')
@click.option('-n', '--size', 'members', type=int, default=None, help="Number of members (>= 2; the protocol's: 4).")
@click.option(
    '--base-seed', type=click.IntRange(0), default=0, show_default=True, help='Member k gets seed base_seed + k.'
)
@click.option('--model-size', 'model_size', type=click.Choice(SIZES), default=None, help='Model size (default: small).')
@click.option(
    '--parent-committee',
    'parent',
    default=None,
    metavar='COMMITTEE',
    help='Warm start: member k starts from member k of this CommitteeData (pk/UUID).',
)
@training_options
def cmd_committee(
    identifier,
    members,
    base_seed,
    model_size,
    parent,
    protocol,
    epochs,
    bec,
    set_values,
    compile_model,
    code_label,
    walltime,
    wait_s,
    profile,
    **request,
):
    """Train a committee of models with seeds base_seed, base_seed+1, ... on DATASET (CommitteeWorkChain)."""
    from aiida import orm

    from ionfield.workflows.train.committee import CommitteeWorkChain

    if members is not None and members < 2:
        raise click.BadParameter(f'a committee needs at least 2 members, got {members}', param_hint='-n/--size')
    load_profile_or_fail(profile)
    dataset = load_dataset(identifier)
    if 'seed' in parse_key_values(set_values, '--set'):
        raise click.UsageError('committee members get seeds base_seed + k: use --base-seed, not --set seed=...')
    overrides = {'training': training_overrides(set_values, protocol, size=model_size, max_epochs=epochs, bec=bec)}
    if members is not None:
        overrides['committee_size'] = members
    members = CommitteeWorkChain.get_protocol_inputs(protocol, overrides)['committee_size']
    parent_committee = load_committee(parent) if parent is not None else None
    if parent_committee is not None and parent_committee.size < members:
        raise click.BadParameter(
            f'the parent committee has {parent_committee.size} members, {members} were asked for',
            param_hint='--parent-committee',
        )
    code = load_train_code(code_label)
    builder = CommitteeWorkChain.get_builder_from_protocol(
        code,
        dataset,
        protocol,
        overrides=overrides,
        base_seed=base_seed,
        parent_committee=parent_committee,
        options=job_metadata_options(code, walltime, **request),
    )
    builder.member.train.compile = orm.Bool(compile_model)
    size = builder.settings.get('size', "the parent committee's")
    submit_and_wait(
        builder,
        wait_s,
        describe=f' on DatasetData<{dataset.pk}> ({members} members, seeds {base_seed}..{base_seed + members - 1}, '
        f'size {size})',
        report=lambda node: echo_committee(node.outputs.committee),
    )


@cli.group('model')
def cmd_model():
    """Inspect and export trained models (ModelData and CommitteeData nodes)."""


@cmd_model.command('show')
@click.argument('identifier', metavar='MODEL')
@PROFILE_OPTION
def model_show(identifier, profile):
    """Print the metadata and test metrics of MODEL.

    MODEL is a ModelData, a CommitteeData (one row per member), or the pk/UUID of a process with a
    `model` or `committee` output (TrainWorkChain, TrainCalculation, CommitteeWorkChain).
    """
    from ionfield.plugins.data.model import CommitteeData

    load_profile_or_fail(profile)
    node = load_model(identifier, committee=True)
    if isinstance(node, CommitteeData):
        echo_committee(node)
    else:
        echo_model(node)


@cmd_model.command('export')
@click.argument('identifier', metavar='MODEL')
@click.option(
    '-o',
    '--output',
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help='File to write: a .nequip.zip package (or a .nequip.pt2 file with --compiled).',
)
@click.option('--compiled', is_flag=True, help='Write the AOTInductor-compiled model instead of the package.')
@PROFILE_OPTION
def model_export(identifier, output, compiled, profile):
    """Write MODEL to a nequip file.

    MODEL is a ModelData, or the pk/UUID of a TrainWorkChain/TrainCalculation with a `model` output.
    """
    suffix = '.nequip.pt2' if compiled else '.nequip.zip'
    if not output.endswith(suffix):
        what = 'the compiled model' if compiled else 'the package'
        raise click.BadParameter(f'{what} is written to a `{suffix}` file, got `{output}`', param_hint='--output')
    load_profile_or_fail(profile)
    node = load_model(identifier)
    try:
        path = node.export(output, compiled=compiled)
    except ValueError as exception:
        raise click.ClickException(str(exception)) from exception
    click.echo(f'wrote {"compiled model" if compiled else "package"} of ModelData<{node.pk}> to {path}')
