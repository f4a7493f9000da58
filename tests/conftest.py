"""Shared fixtures: aiida-core's own (temporary profile), plus helpers to drive the ``ionfield`` CLI.

CLI tests run ``ionfield`` in a subprocess with its own ``AIIDA_PATH``, so they exercise exactly
what a user types and never touch the developer's or the session's configuration.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
IONFIELD = str(pathlib.Path(sys.executable).with_name('ionfield'))
VERDI = str(pathlib.Path(sys.executable).with_name('verdi'))

requires_qe = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ('pw.x', 'ph.x', 'ld1.x', 'mpirun')),
    reason='Quantum ESPRESSO is not installed (apt-get install quantum-espresso quantum-espresso-data)',
)


def run(command: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli_env(tmp_path):
    """Environment for a CLI subprocess with a fresh, empty AiiDA configuration directory."""
    return _environment(tmp_path / 'aiida')


def _environment(aiida_path: pathlib.Path) -> dict:
    """As in an activated virtual environment: its ``bin`` first on PATH (the daemon needs ``verdi`` there)."""
    path = f'{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}'
    return {**os.environ, 'PATH': path, 'AIIDA_PATH': str(aiida_path), 'OMP_NUM_THREADS': '1'}


def ionfield(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([IONFIELD, *args], env=env, timeout=timeout)


def stop_daemon(profile: str, env: dict) -> None:
    run([VERDI, '-p', profile, 'daemon', 'stop'], env=env, timeout=120)


@pytest.fixture(scope='module')
def laptop_profile(tmp_path_factory):
    """A laptop profile made by ``ionfield setup laptop`` (daemon running); the daemon is stopped afterwards."""
    if not all(shutil.which(tool) for tool in ('pw.x', 'ph.x', 'ld1.x', 'mpirun')):
        pytest.skip('Quantum ESPRESSO is not installed')
    env = _environment(tmp_path_factory.mktemp('laptop') / 'aiida')
    name = 'ionfield-test-laptop'
    result = ionfield('setup', 'laptop', '-p', name, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield name, env, result
    finally:
        stop_daemon(name, env)


@pytest.fixture(scope='session')
def qe_engine(aiida_profile, tmp_path_factory):
    """pw/ph codes on a ``localhost`` computer and the generated pslibrary family, in the test profile.

    Processes are run in the test process (``aiida.engine.run``), so no broker or daemon is involved.
    """
    if not all(shutil.which(tool) for tool in ('pw.x', 'ph.x', 'ld1.x', 'mpirun')):
        pytest.skip('Quantum ESPRESSO is not installed (apt-get install quantum-espresso quantum-espresso-data)')
    from ionfield.plugins.setup.localhost import ensure_localhost_computer, ensure_qe_codes, find_qe_executables
    from ionfield.plugins.setup.pseudos import install_pslibrary_family

    workdir = tmp_path_factory.mktemp('qe')
    computer, _ = ensure_localhost_computer('localhost', workdir / 'scratch')
    codes = {label: code for label, (code, _) in ensure_qe_codes(computer, find_qe_executables()).items()}
    family, _ = install_pslibrary_family(workdir / 'pseudos')
    return {'pw_code': codes['pw'], 'ph_code': codes['ph'], 'pseudo_family': family.label}


@pytest.fixture(scope='session')
def train_code(aiida_profile, tmp_path_factory):
    """The ``ionfield-train`` code on a ``localhost`` computer of the test profile."""
    from ionfield.plugins.setup.localhost import ensure_localhost_computer, ensure_runner_codes

    computer, _ = ensure_localhost_computer('localhost', tmp_path_factory.mktemp('train') / 'scratch')
    return ensure_runner_codes(computer)['ionfield-train'][0]


@pytest.fixture(scope='session')
def md_code(aiida_profile, tmp_path_factory):
    """The ``ionfield-md`` code on a ``localhost`` computer of the test profile."""
    from ionfield.plugins.setup.localhost import ensure_localhost_computer, ensure_runner_codes

    computer, _ = ensure_localhost_computer('localhost', tmp_path_factory.mktemp('md') / 'scratch')
    return ensure_runner_codes(computer)['ionfield-md'][0]


@pytest.fixture(scope='session')
def trained_members(tmp_path_factory):
    """Two members (seeds 0 and 1) trained once by ``ionfield-train`` on synthetic Li3N frames.

    Returns ``(dataset, [(exit code, workdir), ...])``; each workdir holds ``model.nequip.zip``.
    Shared by the training, committee and MD tests (about 30 s of training in all).
    """
    from .models.synthetic import synthetic_dataset

    root = tmp_path_factory.mktemp('train')
    data = synthetic_dataset(24, bec_share=0.5)
    runs = []
    for seed in (0, 1):
        workdir = root / f'seed{seed}'
        workdir.mkdir()
        data.save(workdir / 'dataset.npz')
        (workdir / 'settings.json').write_text(json.dumps({'seed': seed, 'max_epochs': 12, 'patience': 12}))
        command = [sys.executable, '-m', 'ionfield.models.train_runner', '--workdir', str(workdir)]
        command += ['--dataset', str(workdir / 'dataset.npz'), '--settings', str(workdir / 'settings.json')]
        code = subprocess.run(
            command, env={**os.environ, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True
        ).returncode
        runs.append((code, workdir))
    return data, runs
