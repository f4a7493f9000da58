"""``ionfield setup laptop|server``."""

from __future__ import annotations

import click

from .root import cli

_COMMON = [
    click.option('--email', default='ionfield@localhost', show_default=True, help='Email of the default AiiDA user.'),
    click.option('--computer', default='localhost', show_default=True, help='Label of the localhost computer.'),
    click.option(
        '--pseudo-family',
        default='pslibrary',
        show_default=True,
        help='`pslibrary`: generate pslibrary-1.0.0 PBE PAW files with ld1.x (offline); `sssp`: install SSSP with '
        'aiida-pseudo (needs the internet); or the label of a family already installed.',
    ),
    click.option(
        '--without-qe', is_flag=True, help='Set up no QE codes and no pseudopotentials (e.g. VASP-only users).'
    ),
    click.option('--no-daemon', is_flag=True, help='Do not start the daemon at the end.'),
    click.option('--set-default', is_flag=True, help='Make this the default AiiDA profile.'),
]


def _common(function):
    for option in reversed(_COMMON):
        function = option(function)
    return function


def _run(options) -> None:
    from ionfield.plugins.setup.machine import setup_machine
    from ionfield.plugins.setup.profiles import SetupError

    try:
        setup_machine(options, echo=click.echo)
    except SetupError as exception:
        raise click.ClickException(str(exception)) from exception
    click.secho(
        f'Profile `{options.profile}` is ready. Check it with: ionfield doctor -p {options.profile}', fg='green'
    )


@cli.group('setup')
def cmd_setup():
    """Stand up a profile, the localhost computer, QE codes and a pseudo family (idempotent)."""


@cmd_setup.command('laptop')
@click.option('-p', '--profile', default='ionfield', show_default=True, help='Name of the profile.')
@click.option('--workers', default=1, show_default=True, type=click.IntRange(1, 64), help='Daemon workers.')
@_common
def setup_laptop(profile, workers, email, computer, pseudo_family, without_qe, no_daemon, set_default):
    """SQLite storage + the built-in ZeroMQ broker: no services needed."""
    from ionfield.plugins.setup.machine import SetupOptions

    _run(
        SetupOptions(
            kind='laptop',
            profile=profile,
            email=email,
            computer=computer,
            pseudo_family=pseudo_family,
            without_qe=without_qe,
            workers=workers,
            start_daemon=not no_daemon,
            set_default=set_default,
        )
    )


@cmd_setup.command('server')
@click.option('-p', '--profile', default='ionfield-server', show_default=True, help='Name of the profile.')
@click.option('--workers', default=2, show_default=True, type=click.IntRange(1, 64), help='Daemon workers.')
@click.option('--db-host', default='localhost', show_default=True, help='PostgreSQL host.')
@click.option('--db-port', default=5432, show_default=True, type=int, help='PostgreSQL port.')
@click.option(
    '--db-superuser', default='postgres', show_default=True, help='A role that may create roles and databases.'
)
@click.option('--db-superuser-password', default=None, help='Its password (none for trust/peer authentication).')
@click.option('--db-name', default=None, help='Database to create or reuse (default: aiida_<profile>).')
@click.option('--db-user', default=None, help='Role that owns the database (default: the database name).')
@click.option('--broker-host', default='127.0.0.1', show_default=True, help='RabbitMQ host.')
@click.option('--broker-port', default=5672, show_default=True, type=int, help='RabbitMQ port.')
@click.option('--broker-username', default='guest', show_default=True, help='RabbitMQ user.')
@click.option('--broker-password', default='guest', show_default=True, help='RabbitMQ password.')
@click.option('--broker-vhost', default='', help='RabbitMQ virtual host.')
@_common
def setup_server(
    profile,
    workers,
    db_host,
    db_port,
    db_superuser,
    db_superuser_password,
    db_name,
    db_user,
    broker_host,
    broker_port,
    broker_username,
    broker_password,
    broker_vhost,
    email,
    computer,
    pseudo_family,
    without_qe,
    no_daemon,
    set_default,
):
    """PostgreSQL storage (C.UTF-8) + RabbitMQ broker + a daemon with several workers."""
    from ionfield.plugins.setup.machine import SetupOptions
    from ionfield.plugins.setup.profiles import PostgresSettings, RabbitmqSettings

    _run(
        SetupOptions(
            kind='server',
            profile=profile,
            email=email,
            computer=computer,
            pseudo_family=pseudo_family,
            without_qe=without_qe,
            workers=workers,
            start_daemon=not no_daemon,
            set_default=set_default,
            postgres=PostgresSettings(db_host, db_port, db_superuser, db_superuser_password, db_name, db_user),
            rabbitmq=RabbitmqSettings(broker_host, broker_port, broker_username, broker_password, broker_vhost),
        )
    )


@cmd_setup.command('slurm')
@click.option('-p', '--profile', default=None, help='Profile to add the computer to (default: the default profile).')
@click.option('--computer', default='slurm', show_default=True, help='Label of the SLURM computer.')
@click.option(
    '--mpiprocs', default=None, type=click.IntRange(1), help='MPI ranks per node (default: the cores of this machine).'
)
@click.option('--without-qe', is_flag=True, help='Only the ionfield-train and ionfield-md codes.')
def setup_slurm(profile, computer, mpiprocs, without_qe):
    """A `core.slurm` computer for the SLURM of this machine, with pw, ph, ionfield-train and ionfield-md on it.

    \b
    Jobs then go through the queue with per-job requests, e.g.
      ionfield md ... --code ionfield-md@slurm --partition gpu --gpus 1 --account proj --walltime 7200
      ionfield label alpha-Li3N --computer slurm --partition debug
    """
    import pathlib

    from aiida.manage.configuration import get_config

    from ionfield.plugins.setup.profiles import SetupError
    from ionfield.plugins.setup.slurm import setup_slurm_computer

    from .utils import load_profile_or_fail

    loaded = load_profile_or_fail(profile)
    workdir = pathlib.Path(get_config().dirpath) / 'scratch' / loaded.name / computer
    try:
        setup_slurm_computer(computer, workdir, mpiprocs, with_qe=not without_qe, echo=click.echo)
    except SetupError as exception:
        raise click.ClickException(str(exception)) from exception
    click.secho(f'Computer `{computer}` is ready in profile `{loaded.name}`.', fg='green')
