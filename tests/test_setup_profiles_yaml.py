"""The YAML files in setup_profiles/ work with `verdi ... --config`, as their headers promise."""

from __future__ import annotations

import pytest

from .conftest import REPO, VERDI, run

pytestmark = pytest.mark.slow
PROFILES = REPO / 'setup_profiles'


def _verdi(*args, env):
    result = run([VERDI, *args], env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_laptop_profile_computers_and_codes_from_yaml(cli_env, tmp_path):
    _verdi('profile', 'setup', 'core.sqlite_dos', '-n', '--config', str(PROFILES / 'laptop/profile.yaml'), env=cli_env)
    _verdi(
        '-p', 'ionfield', 'computer', 'setup', '-n', '--config', str(PROFILES / 'localhost/computer.yaml'), env=cli_env
    )
    _verdi(
        '-p',
        'ionfield',
        'computer',
        'setup',
        '-n',
        '--config',
        str(PROFILES / 'cluster/computer-slurm-gpu.yaml'),
        env=cli_env,
    )
    key = tmp_path / 'id_ed25519'
    key.write_text('not a real key: configuring does not connect\n')
    _verdi(
        '-p',
        'ionfield',
        'computer',
        'configure',
        'core.ssh',
        '-n',
        '--config',
        str(PROFILES / 'cluster/computer-slurm-gpu-ssh.yaml'),
        '--key-filename',
        str(key),
        'cluster-gpu',
        env=cli_env,
    )
    for name in ('localhost/code-pw', 'localhost/code-ph', 'cluster/code-pw', 'cluster/code-ph'):
        _verdi(
            '-p',
            'ionfield',
            'code',
            'create',
            'core.code.installed',
            '-n',
            '--config',
            str(PROFILES / f'{name}.yaml'),
            env=cli_env,
        )
    codes = _verdi('-p', 'ionfield', 'code', 'list', env=cli_env)
    for label in ('pw@localhost', 'ph@localhost', 'pw@cluster-gpu', 'ph@cluster-gpu'):
        assert label in codes
    shown = _verdi('-p', 'ionfield', 'computer', 'show', 'cluster-gpu', env=cli_env)
    assert 'core.slurm' in shown and 'core.ssh' in shown
    status = _verdi('-p', 'ionfield', 'profile', 'show', 'ionfield', env=cli_env)
    assert 'core.zeromq' in status and 'core.sqlite_dos' in status
