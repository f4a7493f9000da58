"""``ionfield provenance NODE``: what a number depends on, back to the DFT calculations."""

from __future__ import annotations

import json

import click

from .params import load_node
from .root import cli
from .utils import PROFILE_OPTION, load_profile_or_fail

#: How many nodes of a kind are named before "and N more" (``--full`` names all).
SHOWN = 5


@cli.command('provenance')
@click.argument('identifier', metavar='NODE')
@click.option('--full', is_flag=True, help='Name every node of every kind, oldest first.')
@click.option('--json', 'as_json', is_flag=True, help='Counts and pks per kind as JSON.')
@PROFILE_OPTION
def cmd_provenance(identifier, full, as_json, profile):
    """The data provenance of NODE (any pk/UUID; a workflow: its outputs): the DFT calculations, datasets,
    training jobs, models, MD jobs, trajectories and analysis steps it came from.

    \b
    ionfield provenance 4321          # an `analysis` Dict of a campaign, a model, a dataset, a table
    """
    from ionfield.plugins.provenance import KINDS, describe, upstream

    load_profile_or_fail(profile)
    node = load_node(identifier, 'NODE')
    found = upstream(node)
    if as_json:
        click.echo(json.dumps(found.summary(), indent=1))
        return
    click.echo(f'{describe(node)}: {found.n_nodes} node(s) upstream')
    for kind, title in KINDS:
        nodes = found.kinds[kind]
        if not nodes:
            continue
        extra = ''
        if kind == 'dft':
            extra = (
                ' (' + ', '.join(f'{count} {program}' for program, count in sorted(found.dft_programs().items())) + ')'
            )
        if kind == 'steps':
            extra = ' (' + ', '.join(f'{name} x{count}' for name, count in sorted(found.step_names().items())) + ')'
        click.echo(f'  {title}: {len(nodes)}{extra}')
        shown = nodes if full else nodes[:SHOWN]
        for each in shown:
            click.echo(f'    {describe(each)}')
        if len(nodes) > len(shown):
            click.echo(f'    ... and {len(nodes) - len(shown)} more (--full)')
