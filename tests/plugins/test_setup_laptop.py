"""``ionfield setup laptop`` + ``ionfield doctor`` + a workchain through the daemon, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil

import pytest

from ..conftest import VERDI, ionfield, requires_qe, run

pytestmark = pytest.mark.slow


def _config(env) -> dict:
    return json.loads((pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json').read_text())


def _config_exists(env) -> bool:
    return (pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json').exists()


def _tree_digest(root: pathlib.Path) -> dict[str, str]:
    """Content hash of the configuration, storage and repository (not the running daemon's and broker's state)."""
    digest = {}
    runtime = {'daemon', 'broker', 'access'}
    for path in sorted(root.rglob('*')):
        if path.is_file() and not runtime & set(path.relative_to(root).parts):
            digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@requires_qe
def test_setup_then_doctor_all_green_then_daemon_runs_a_workchain(laptop_profile):
    name, env, setup = laptop_profile
    family = [line.split() for line in setup.stdout.splitlines() if line.startswith('pseudo family')]
    assert family == [
        ['pseudo', 'family', 'created', 'ionfield/pslibrary-1.0.0/PBE/PAW', '(Ag,', 'I,', 'Li,', 'N,', 'O,', 'P)']
    ]
    doctor = ionfield('doctor', '-p', name, env=env)
    assert doctor.returncode == 0, doctor.stdout
    for line in doctor.stdout.splitlines():
        assert not line.startswith(('✘', '⚠')), line
    for word in ('storage', 'broker', 'daemon', 'code pw@localhost', 'code ph@localhost', 'pseudopotentials'):
        assert any(line.startswith('✔') and word in line for line in doctor.stdout.splitlines()), word

    submitted = ionfield('check', '-p', name, '--submit', '--wait', '180', 'alpha-Li3N', env=env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert 'submitted StructureCheckWorkChain' in submitted.stdout
    assert 'Li3N, 4 atoms, 1.295 g/cm^3' in submitted.stdout


@requires_qe
def test_setup_again_reuses_everything(laptop_profile):
    name, env, setup = laptop_profile
    options = _config(env)['profiles'][name]['options']
    assert options['daemon.timeout'] == 60 and options['daemon.worker_process_slots'] == 2000, options
    assert 'daemon option      set      daemon.worker_process_slots = 2000' in setup.stdout
    # a value the user chose is theirs: setting up again keeps it
    chosen = run([VERDI, '-p', name, 'config', 'set', 'daemon.worker_process_slots', '1500'], env=env)
    assert chosen.returncode == 0, chosen.stderr
    again = ionfield('setup', 'laptop', '-p', name, env=env)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert any(line.startswith('profile') and 'exists' in line for line in lines)
    assert any(line.startswith('pseudo family') and 'exists' in line for line in lines)
    assert not any('created' in line or 'daemon option' in line for line in lines), again.stdout
    assert list(_config(env)['profiles']) == [name]
    assert _config(env)['profiles'][name]['options']['daemon.worker_process_slots'] == 1500


@requires_qe
def test_doctor_changes_nothing(laptop_profile):
    name, env, _ = laptop_profile
    root = pathlib.Path(env['AIIDA_PATH']) / '.aiida'
    before = _tree_digest(root)
    assert ionfield('doctor', '-p', name, env=env).returncode == 0
    assert _tree_digest(root) == before


def test_setup_without_qe_changes_nothing(cli_env, tmp_path):
    """No QE on PATH: a clear message with the install command, and no profile is created."""
    bare = tmp_path / 'bin'
    bare.mkdir()
    for tool in ('python3',):
        if shutil.which(tool):
            (bare / tool).symlink_to(shutil.which(tool))
    env = {**cli_env, 'PATH': str(bare)}
    result = ionfield('setup', 'laptop', '-p', 'noqe', env=env)
    assert result.returncode == 1
    assert 'Quantum ESPRESSO is not installed' in result.stderr and 'apt-get install quantum-espresso' in result.stderr
    config = pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json'
    assert not config.exists() or 'noqe' not in json.loads(config.read_text()).get('profiles', {})


def test_existing_profile_of_another_kind_is_left_untouched(cli_env):
    created = ionfield('setup', 'laptop', '-p', 'mine', '--without-qe', '--no-daemon', env=cli_env)
    assert created.returncode == 0, created.stderr
    before = _config(cli_env)
    refused = ionfield('setup', 'server', '-p', 'mine', '--without-qe', '--no-daemon', env=cli_env)
    assert refused.returncode == 1
    assert 'already exists with storage `core.sqlite_dos`' in refused.stderr and 'left untouched' in refused.stderr
    assert _config(cli_env) == before


@requires_qe
def test_half_finished_setup_is_completed(cli_env):
    """A first run that stopped after the profile and computer (here: --without-qe) is finished by a second run."""
    first = ionfield('setup', 'laptop', '-p', 'half', '--without-qe', '--no-daemon', env=cli_env)
    assert first.returncode == 0, first.stderr
    pseudo_dir = pathlib.Path(cli_env['AIIDA_PATH']) / '.aiida' / 'pseudos' / 'pslibrary-1.0.0-PBE-PAW'
    pseudo_dir.mkdir(parents=True)
    (pseudo_dir / 'Li.pbe-sl-kjpaw_psl.1.0.0.UPF').write_text('<UPF version="2.0.1">\n  <PP_INFO>')  # interrupted
    second = ionfield('setup', 'laptop', '-p', 'half', '--no-daemon', env=cli_env)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert any(line.startswith('profile') and 'exists' in line for line in lines)
    assert any(line.startswith('code pw') and 'created' in line for line in lines)
    assert any(line.startswith('pseudo family') and 'created' in line for line in lines)
    assert (pseudo_dir / 'Li.pbe-sl-kjpaw_psl.1.0.0.UPF').read_text().rstrip().endswith('</UPF>')
    doctor = ionfield('doctor', '-p', 'half', env=cli_env)
    assert doctor.returncode == 1  # only the daemon is missing, and doctor says how to start it
    failing = [line for line in doctor.stdout.splitlines() if line.startswith('✘')]
    assert len(failing) == 1 and 'daemon' in failing[0]
    assert 'verdi -p half daemon start' in doctor.stdout


def test_doctor_without_any_configuration_says_how_to_start(cli_env):
    result = ionfield('doctor', '-p', 'nowhere', env=cli_env)
    assert result.returncode == 1
    assert 'ionfield setup laptop' in result.stdout
    # importing aiida creates an empty configuration folder; doctor itself must not write a configuration
    assert not (pathlib.Path(cli_env['AIIDA_PATH']) / '.aiida' / 'config.json').exists()


def test_unknown_pseudo_family_is_refused_with_the_alternatives(cli_env):
    if not shutil.which('pw.x'):
        pytest.skip('Quantum ESPRESSO is not installed')
    result = ionfield('setup', 'laptop', '-p', 'fam', '--pseudo-family', 'NoSuch/1.0', '--no-daemon', env=cli_env)
    assert result.returncode == 1
    assert '`NoSuch/1.0` is not installed' in result.stderr and '--pseudo-family pslibrary' in result.stderr
    assert 'fam' not in _config(cli_env).get('profiles', {}) if _config_exists(cli_env) else True


def test_torch_thread_discipline_is_set_on_the_computer(cli_env):
    created = ionfield('setup', 'laptop', '-p', 'threads', '--without-qe', '--no-daemon', env=cli_env)
    assert created.returncode == 0, created.stderr
    from ..conftest import VERDI, run

    shown = run([VERDI, '-p', 'threads', 'computer', 'show', 'localhost'], env=cli_env)
    assert 'export OMP_NUM_THREADS=1' in shown.stdout
    if os.geteuid() == 0:
        assert 'OMPI_ALLOW_RUN_AS_ROOT=1' in shown.stdout
