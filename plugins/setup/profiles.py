"""Create or reuse the AiiDA profiles of the two local kinds of machine.

- laptop: ``core.sqlite_dos`` storage and aiida-core's built-in ZeroMQ broker (what ``verdi presto
  --use-zeromq`` makes): the daemon and ``submit`` work with no external service.
- server: ``core.psql_dos`` storage and ``core.rabbitmq``. The role and database are created here
  with the C.UTF-8 locale, because ``verdi presto --use-postgres`` hard-codes en_US.UTF-8, which
  minimal Debian lacks.

Every function is idempotent: an existing profile of the right kind is reused, one of the wrong
kind is refused with a message and left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import pathlib
import secrets

__all__ = (
    'SetupError',
    'PostgresSettings',
    'RabbitmqSettings',
    'ensure_laptop_profile',
    'ensure_server_profile',
    'ensure_caching',
    'ensure_daemon_options',
    'DAEMON_OPTIONS',
    'CACHED_CALCULATIONS',
)

LAPTOP_STORAGE = 'core.sqlite_dos'
LAPTOP_BROKER = 'core.zeromq'
SERVER_STORAGE = 'core.psql_dos'
SERVER_BROKER = 'core.rabbitmq'

CACHED_CALCULATIONS = (
    'aiida.calculations:quantumespresso.pw',
    'aiida.calculations:quantumespresso.ph',
)
"""Calculations whose identical reruns are served from the cache (identical DFT labels are not recomputed)."""


class SetupError(RuntimeError):
    """A set-up step cannot proceed; the message says why and what to do. Nothing was changed."""


@dataclasses.dataclass(frozen=True)
class PostgresSettings:
    """Where the PostgreSQL server is and which superuser may create the profile's role and database."""

    host: str = 'localhost'
    port: int = 5432
    superuser: str = 'postgres'
    superuser_password: str | None = None
    database: str | None = None
    user: str | None = None


@dataclasses.dataclass(frozen=True)
class RabbitmqSettings:
    host: str = '127.0.0.1'
    port: int = 5672
    username: str = 'guest'
    password: str = 'guest'
    virtual_host: str = ''


def _config():
    from aiida.manage.configuration import get_config

    return get_config(create=True)


def _existing_profile(name: str):
    config = _config()
    if name in config.profile_names:
        return config.get_profile(name)
    return None


def _require_kind(profile, storage: str, broker: str, kind: str) -> None:
    if profile.storage_backend != storage:
        raise SetupError(
            f'a profile `{profile.name}` already exists with storage `{profile.storage_backend}`, not the {kind} '
            f'storage `{storage}`; it was left untouched. Choose another name with `--profile NAME`.'
        )
    if profile.process_control_backend is None:
        raise SetupError(
            f'the profile `{profile.name}` exists but has no broker, so its daemon cannot run; it was left '
            f'untouched. Configure one with `verdi profile configure-broker {profile.name} {broker}`.'
        )


#: Seconds between a waiting parent's checks that a child has terminated, a fail-safe behind the
#: broker's broadcast. The laptop profile polls every second (a handful of processes; answers at
#: once). The server profile keeps aiida-core's 60 s: at 1 s the 300 parents waiting in the 100-workchain
#: load benchmark (benchmarks/server_load.py) cost ~80 transactions/s and kept both workers busy polling.
LAPTOP_POLL_INTERVAL_S = 1


def _finish_profile(profile, set_default: bool, poll_interval_s: int | None = None) -> None:
    config = _config()
    if poll_interval_s is not None:
        config.set_option('runner.poll.interval', poll_interval_s, scope=profile.name)
    if set_default or config.default_profile_name is None:
        config.set_default_profile(profile.name, overwrite=True)
    config.store()


def ensure_laptop_profile(name: str, email: str, set_default: bool = False):
    """Return ``(profile, created)`` for an SQLite + ZeroMQ profile called ``name``."""
    from aiida.manage.configuration import create_profile
    from aiida.plugins import BrokerFactory

    existing = _existing_profile(name)
    if existing is not None:
        _require_kind(existing, LAPTOP_STORAGE, LAPTOP_BROKER, 'laptop')
        return existing, False
    profile = create_profile(
        _config(),
        name=name,
        email=email,
        storage_backend=LAPTOP_STORAGE,
        storage_config={},
        broker_backend=LAPTOP_BROKER,
        broker_config=BrokerFactory(LAPTOP_BROKER).get_default_config(),
    )
    _finish_profile(profile, set_default, LAPTOP_POLL_INTERVAL_S)
    return profile, True


def check_rabbitmq(settings: RabbitmqSettings) -> dict:
    """Return the broker configuration of a reachable RabbitMQ, or raise ``SetupError``."""
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    try:
        return detect_rabbitmq_config(
            protocol='amqp',
            username=settings.username,
            password=settings.password,
            host=settings.host,
            port=settings.port,
            virtual_host=settings.virtual_host,
        )
    except ConnectionError as exception:
        cause = exception.__cause__ or exception  # the message of ConnectionError itself holds the password
        raise SetupError(
            f'no RabbitMQ broker answers at {settings.host}:{settings.port} as `{settings.username}` '
            f'({type(cause).__name__}: {cause}). Start it (Debian: '
            '`sudo apt-get install rabbitmq-server && sudo rabbitmq-server -detached`) or use the laptop profile, '
            'which needs no broker service: `ionfield setup laptop`.'
        ) from exception


def _connect(settings: PostgresSettings, dbname: str = 'postgres'):
    import psycopg

    try:
        return psycopg.connect(
            host=settings.host,
            port=settings.port,
            user=settings.superuser,
            password=settings.superuser_password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exception:
        raise SetupError(
            f'cannot connect to PostgreSQL at {settings.host}:{settings.port} as `{settings.superuser}`: '
            f'{str(exception).strip()}. Start PostgreSQL (Debian: `sudo apt-get install postgresql`) or pass '
            '`--db-superuser`/`--db-superuser-password` of a role that may create databases.'
        ) from exception


def ensure_database(settings: PostgresSettings, database: str, user: str) -> str:
    """Create role ``user`` and database ``database`` (UTF8, C.UTF-8) if missing; return the role's password.

    A database left empty by an interrupted set-up is reused. A database that already holds tables
    but belongs to no profile of this configuration is refused: it may be another profile's data.
    """
    from psycopg import sql

    password = secrets.token_hex(16)
    with _connect(settings) as connection:
        cursor = connection.cursor()
        cursor.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (user,))
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL('CREATE ROLE {} LOGIN PASSWORD {}').format(sql.Identifier(user), sql.Literal(password))
            )
        else:
            cursor.execute(
                sql.SQL('ALTER ROLE {} WITH LOGIN PASSWORD {}').format(sql.Identifier(user), sql.Literal(password))
            )
        cursor.execute('SELECT 1 FROM pg_database WHERE datname = %s', (database,))
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL(
                    "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
                    'TEMPLATE template0'
                ).format(sql.Identifier(database), sql.Identifier(user))
            )
            return password
    with _connect(settings, dbname=database) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        (ntables,) = cursor.fetchone()
    if ntables:
        raise SetupError(
            f'the database `{database}` already holds {ntables} tables but no profile of this AiiDA configuration '
            'uses it; it was left untouched. Pass another `--db-name`, or drop it if it is garbage: '
            f'`dropdb -h {settings.host} -U {settings.superuser} {database}`.'
        )
    return password


def ensure_server_profile(
    name: str,
    email: str,
    postgres: PostgresSettings = PostgresSettings(),
    rabbitmq: RabbitmqSettings = RabbitmqSettings(),
    repository: pathlib.Path | None = None,
    set_default: bool = False,
):
    """Return ``(profile, created)`` for a PostgreSQL + RabbitMQ profile called ``name``.

    Both services are checked before anything is created, so a missing service changes nothing.
    """
    from aiida.manage.configuration import create_profile

    existing = _existing_profile(name)
    if existing is not None:
        _require_kind(existing, SERVER_STORAGE, SERVER_BROKER, 'server')
        return existing, False

    broker_config = check_rabbitmq(rabbitmq)
    database = postgres.database or f'aiida_{name}'.replace('-', '_')
    user = postgres.user or database
    password = ensure_database(postgres, database, user)
    config = _config()
    repository = repository or pathlib.Path(config.dirpath) / 'repository' / name
    storage_config = {
        'database_hostname': postgres.host,
        'database_port': postgres.port,
        'database_name': database,
        'database_username': user,
        'database_password': password,
        'repository_uri': repository.absolute().as_uri(),
    }
    profile = create_profile(
        config,
        name=name,
        email=email,
        storage_backend=SERVER_STORAGE,
        storage_config=storage_config,
        broker_backend=SERVER_BROKER,
        broker_config=broker_config,
    )
    _finish_profile(profile, set_default)
    return profile, True


def ensure_caching(profile_name: str, identifiers=CACHED_CALCULATIONS) -> list[str]:
    """Enable AiiDA caching for the DFT labelling calculations of ``profile_name``; return what was added."""
    config = _config()
    enabled = list(config.get_option('caching.enabled_for', scope=profile_name) or [])
    added = [identifier for identifier in identifiers if identifier not in enabled]
    if added:
        config.set_option('caching.enabled_for', enabled + added, scope=profile_name)
        config.store()
    return added


#: Daemon options ``ionfield setup`` gives a profile unless the user already set them there.
DAEMON_OPTIONS = {
    # Seconds ``verdi daemon stop/status`` wait for circus. aiida-core's default (2 s) times out while a
    # 2-core machine runs QE and torch at full load, and `daemon stop` then fails with the daemon still up.
    'daemon.timeout': 60,
    # Processes one worker runs at once. A parent waiting for its children keeps its slot, and children
    # queued behind full workers are never picked up: with aiida-core's 200, 100 LabelWorkChains
    # (LabelWorkChain > QeFrameWorkChain > PwBaseWorkChain > PwCalculation, 400 processes) fill the
    # 400 slots of two workers exactly (`verdi process list`: 100 % used); any more and children wait in
    # the queue behind parents that wait for them. A waiting process costs memory, not CPU: how many
    # engines run at once is the scheduler's business.
    'daemon.worker_process_slots': 2000,
}


def ensure_daemon_options(profile_name: str) -> dict:
    """Set the ``DAEMON_OPTIONS`` the user has not set on the profile; return those set."""
    config = _config()
    added = {
        name: value
        for name, value in DAEMON_OPTIONS.items()
        if config.get_option(name, scope=profile_name, default=False) is None
    }
    for name, value in added.items():
        config.set_option(name, value, scope=profile_name)
    if added:
        config.store()
    return added
