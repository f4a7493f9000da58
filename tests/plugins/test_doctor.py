"""``ionfield doctor``'s checks on a profile that lacks most things: failures are named and fixes are real commands."""

from __future__ import annotations

import shlex

import click

from ionfield.plugins.cli import cli
from ionfield.plugins.setup.doctor import FAIL, run_checks


def _parses(command: str) -> None:
    """The fix must be a command our CLI accepts (parsed, not run)."""
    args = shlex.split(command)[1:]
    context = cli.make_context('ionfield', list(args), resilient_parsing=False)
    while isinstance(context.command, click.Group):
        name, sub, rest = context.command.resolve_command(context, context.protected_args + context.args)
        context = sub.make_context(name, rest, parent=context)


def test_failures_come_with_fix_commands_that_parse(aiida_profile):
    checks = {check.name: check for check in run_checks(aiida_profile.name)}
    assert checks['profile'].status != FAIL
    # the test profile has no broker, no daemon, no localhost computer from `ionfield setup` and no pseudo family
    assert checks['broker'].status == FAIL and 'configure-broker' in checks['broker'].fix
    assert checks['daemon'].status == FAIL
    assert checks['pseudopotentials'].status == FAIL
    fixes = [check.fix for check in checks.values() if check.status == FAIL and check.fix.startswith('ionfield ')]
    assert fixes, 'expected at least one ionfield fix command'
    for fix in fixes:
        _parses(fix)


def test_a_local_computer_with_a_login_shell_is_warned_about_with_the_fix(aiida_profile, tmp_path):
    from aiida import orm

    from ionfield.plugins.setup.doctor import WARN, _check_login_shell
    from ionfield.plugins.setup.localhost import ensure_localhost_computer

    ours, _ = ensure_localhost_computer('doctor-ours', tmp_path / 'ours')
    assert ours.get_configuration()['use_login_shell'] is False
    assert list(_check_login_shell(ours)) == []

    theirs = orm.Computer('doctor-login', 'localhost', transport_type='core.local', scheduler_type='core.direct')
    theirs.set_workdir(str(tmp_path / 'theirs'))
    theirs.store().configure()  # aiida-core's default: a login shell
    (check,) = _check_login_shell(theirs)
    assert check.status == WARN and 'login shell' in check.detail
    assert check.fix.endswith('--no-use-login-shell doctor-login')
