"""``ionfield doctor``: read-only health check of a profile."""

from __future__ import annotations

import click

from .root import cli

_STYLE = {'ok': ('✔', 'green'), 'warn': ('⚠', 'yellow'), 'fail': ('✘', 'red'), 'info': ('ℹ', 'blue')}


@cli.command('doctor')
@click.option('-p', '--profile', default=None, help='Profile to check (default: the default profile).')
def cmd_doctor(profile):
    """Check profile, storage, broker, daemon, computer, codes, pseudos, caching, torch and GPU.

    Changes nothing. Prints the command that fixes each problem; exits with 1 if anything failed.
    """
    from ionfield.plugins.setup.doctor import FAIL, run_checks

    failed = 0
    for check in run_checks(profile):
        symbol, colour = _STYLE[check.status]
        click.echo(f'{click.style(symbol, fg=colour)} {check.name:<18} {check.detail}')
        if check.fix:
            click.echo(f'  {"":<18} fix: {check.fix}')
        failed += check.status == FAIL
    if failed:
        click.secho(f'{failed} problem(s) found.', fg='red')
        raise SystemExit(1)
    click.secho('All checks passed.', fg='green')
