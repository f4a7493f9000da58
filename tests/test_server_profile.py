"""The server profile for real: PostgreSQL + RabbitMQ on localhost, a daemon with two workers, a workchain."""

from __future__ import annotations

import json
import pathlib
import secrets
import shutil
import socket

import pytest

from .conftest import VERDI, ionfield, profile_python, run, stop_daemon

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def services():
    if not _reachable(5432):
        pytest.skip('PostgreSQL is not running on localhost:5432')
    if not _reachable(5672):
        pytest.skip('RabbitMQ is not running on localhost:5672')
    if not shutil.which('pw.x'):
        pytest.skip('Quantum ESPRESSO is not installed')


LABELS = """
query = orm.QueryBuilder().append(orm.WorkChainNode, filters={'attributes.process_label': 'LabelWorkChain'})
print(json.dumps([node.uuid for node in query.all(flat=True) if node.is_finished_ok]))
"""
MOVED = """
nodes = orm.QueryBuilder().append(orm.WorkChainNode, filters={'uuid': {'in': uuids}}).all(flat=True)
print(json.dumps({'found': len(nodes), 'with_dataset': sum('dataset' in node.outputs for node in nodes)}))
"""


def _drop(database: str) -> None:
    import psycopg

    with psycopg.connect(host='localhost', user='postgres', dbname='postgres', autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'DROP ROLE IF EXISTS "{database}"')


def test_server_profile_runs_a_workchain_on_the_daemon_and_takes_a_laptops_archive(
    services, cli_env, laptop_profile, tmp_path
):
    name = f'ionfield-test-{secrets.token_hex(4)}'
    database = f'aiida_{name}'.replace('-', '_')
    try:
        setup = ionfield('setup', 'server', '-p', name, '--workers', '2', env=cli_env)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert f'{name}: core.psql_dos + core.rabbitmq' in setup.stdout
        options = json.loads((pathlib.Path(cli_env['AIIDA_PATH']) / '.aiida' / 'config.json').read_text())
        options = options['profiles'][name]['options']
        # RabbitMQ's broadcasts wake waiting parents; polling them every second kept the workers busy
        assert 'runner.poll.interval' not in options, options
        assert options['daemon.worker_process_slots'] == 2000 and options['daemon.timeout'] == 60, options

        doctor = ionfield('doctor', '-p', name, env=cli_env)
        assert doctor.returncode == 0, doctor.stdout
        assert any(line.startswith('✔') and 'RabbitMQ at 127.0.0.1:5672' in line for line in doctor.stdout.splitlines())
        assert 'running with 2 worker(s)' in doctor.stdout

        import psycopg

        with psycopg.connect(host='localhost', user='postgres', dbname='postgres') as connection:
            row = connection.execute(
                'SELECT datcollate, pg_encoding_to_char(encoding) FROM pg_database WHERE datname = %s', (database,)
            ).fetchone()
        assert row == ('C.UTF-8', 'UTF8')

        # a real DFT workchain through the RabbitMQ broker and the daemon; E/F/S only: DFPT through a daemon is
        # in the laptop profile's main job, and ph.x would add a minute here without testing the server more
        result = ionfield('label', 'alpha-Li3N', '-p', name, '--no-bec', '--wait', '900', env=cli_env, timeout=2000)
        assert result.returncode == 0, result.stdout + result.stderr
        assert 'alpha_li3n' in result.stdout and 'labelled' in result.stdout

        # a laptop profile's work moves to the server with `verdi archive`, provenance included
        laptop, laptop_env, _ = laptop_profile
        uuids = profile_python(laptop, laptop_env, LABELS)
        if not uuids:  # this test alone: the laptop's earlier tests (its main job) did not run
            made = ionfield('label', 'alpha-Li3N', '-p', laptop, '--no-bec', '--wait', '900', env=laptop_env)
            assert made.returncode == 0, made.stdout + made.stderr
            uuids = profile_python(laptop, laptop_env, LABELS)
        assert uuids, 'the laptop profile has no finished labelling workchain to move'
        archive = tmp_path / 'laptop.aiida'
        created = run([VERDI, '-p', laptop, 'archive', 'create', '--all', str(archive)], env=laptop_env, timeout=900)
        assert created.returncode == 0, created.stdout + created.stderr
        imported = run([VERDI, '-p', name, 'archive', 'import', str(archive)], env=cli_env, timeout=900)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        moved = profile_python(name, cli_env, f'uuids = {uuids!r}\n{MOVED}')
        assert moved == {'found': len(uuids), 'with_dataset': len(uuids)}
    finally:
        stop_daemon(name, cli_env)
        run([VERDI, 'profile', 'delete', '--force', '--delete-data', name], env=cli_env, timeout=120)
        _drop(database)


def test_server_setup_without_broker_creates_nothing(services, cli_env):
    name = f'ionfield-test-{secrets.token_hex(4)}'
    result = ionfield('setup', 'server', '-p', name, '--broker-port', '1', env=cli_env)
    assert result.returncode == 1
    assert 'no RabbitMQ broker answers at 127.0.0.1:1' in result.stderr and 'ionfield setup laptop' in result.stderr
    assert 'guest' not in result.stderr.split('as `guest`')[-1], 'the broker password must not be printed'
    import psycopg

    with psycopg.connect(host='localhost', user='postgres', dbname='postgres') as connection:
        database = f'aiida_{name}'.replace('-', '_')
        assert connection.execute('SELECT 1 FROM pg_database WHERE datname = %s', (database,)).fetchone() is None


def test_server_refuses_a_database_with_foreign_tables(services, cli_env):
    import psycopg

    name = f'ionfield-test-{secrets.token_hex(4)}'
    database = f'aiida_{name}'.replace('-', '_')
    try:
        with psycopg.connect(host='localhost', user='postgres', dbname='postgres', autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        with psycopg.connect(host='localhost', user='postgres', dbname=database, autocommit=True) as connection:
            connection.execute('CREATE TABLE precious (x int)')
        result = ionfield('setup', 'server', '-p', name, '--no-daemon', env=cli_env)
        assert result.returncode == 1
        assert 'already holds 1 tables' in result.stderr and 'left untouched' in result.stderr
        with psycopg.connect(host='localhost', user='postgres', dbname=database) as connection:
            assert connection.execute('SELECT count(*) FROM precious').fetchone() == (0,)
    finally:
        _drop(database)
