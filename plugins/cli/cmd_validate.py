"""``ionfield validate MODEL STRUCTURE``: the model against DFT physics before it drives a campaign.

Builds ``ValidationWorkChain`` from its protocol (thresholds, strain, displacement; ``--set`` any
validation setting, validated here so that nothing is submitted with a bad value), labels with the codes
and pseudopotential family of the profile, and with ``--wait`` prints the table of comparisons.
"""

from __future__ import annotations

import click

from .cmd_label import build_structures
from .defaults import label_overrides, max_concurrent_labels, qe_codes
from .launch import submit_and_wait
from .params import load_dataset, load_model
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail, validated_settings


@cli.command('validate')
@click.argument('model_id', metavar='MODEL')
@click.argument('structure', metavar='STRUCTURE')
@click.option(
    '--protocol', default=None, help='Validation protocol: fast (a laptop), moderate (default), precise (a cluster).'
)
@click.option('--set', 'values', multiple=True, metavar='KEY=VALUE', help='Any validation setting (YAML values).')
@click.option('--samples', 'samples_id', default=None, help='DatasetData of DFT-labelled frames from production MD.')
@click.option('--override', is_flag=True, help='Finish even when a comparison fails (the table records it).')
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds and print the table.')
@PROFILE_OPTION
def cmd_validate(model_id, structure, protocol, values, samples_id, override, wait_s, profile):
    """Compare MODEL (a ModelData, or a committee's first member) with DFT on STRUCTURE (a file or reference name).

    \b
    ionfield validate 1234 alpha-Li3N --protocol fast --wait 3600
    """
    from aiida import orm

    from ionfield.models.validation.settings import ValidationSettings
    from ionfield.plugins.data.model import CommitteeData
    from ionfield.workflows.validation.workchain import ValidationWorkChain, validate_inputs

    loaded = load_profile_or_fail(profile)
    try:
        defaults = ValidationWorkChain.get_protocol_inputs(protocol)
    except ValueError as exception:
        raise click.BadParameter(str(exception), param_hint='--protocol') from exception
    settings = validated_settings(ValidationSettings, values, defaults['settings'], what='validation')
    model = load_model(model_id, committee=True, param_hint='MODEL')
    if isinstance(model, CommitteeData):
        model = model.members[0]
    built = build_structures([structure], None, 0, 0.0, 0)
    if len(built) != 1:
        raise click.BadParameter(f'{structure} holds {len(built)} structures; give one', param_hint='STRUCTURE')
    concurrency = max_concurrent_labels()
    overrides = {'settings': settings, **({'max_concurrent_labels': concurrency} if concurrency else {})}
    builder = ValidationWorkChain.get_builder_from_protocol(
        next(iter(built.values())),
        model,
        protocol=protocol,
        overrides=overrides,
        label_overrides=label_overrides(),
        samples=load_dataset(samples_id) if samples_id else None,
        **qe_codes(loaded.name),
    )
    builder.override = orm.Bool(override)
    problem = validate_inputs(builder._inputs(prune=True))
    if problem:
        raise click.UsageError(problem)
    submit_and_wait(builder, wait_s, report=echo_table, poll=5.0)


def echo_table(node) -> None:
    """The comparisons of a finished (or failed) validation, one row each."""
    if 'table' not in node.outputs:
        return
    from ionfield.workflows.validation.workchain import describe_row

    table = node.outputs.table
    for row in table['rows']:
        click.echo(f'{row["status"]:<5} {describe_row(row)}')
    verdict = 'passed' if table['passed'] else f'FAILED on {", ".join(table["failures"])}'
    click.echo(f'validation {verdict}' + (' (overridden)' if table['overridden'] else ''))
