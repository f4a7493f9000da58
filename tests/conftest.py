"""Shared fixtures: aiida-core's own (temporary profile), plus helpers to drive the ``ionfield`` CLI.

CLI tests run ``ionfield`` in a subprocess with its own ``AIIDA_PATH``, so they exercise exactly
what a user types and never touch the developer's or the session's configuration.
"""

from __future__ import annotations

import contextlib
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

RUNNER_POLL_INTERVAL = 0.5
"""Seconds between looks of a waiting parent at its child in the test profile's runners (aiida-core: 0)."""


@pytest.fixture(scope='session')
def aiida_profile(aiida_profile):
    """aiida-core's temporary profile, whose runners poll waiting parents every 0.5 s, not in a busy loop.

    The test profile has no broker, so a workchain run in the test process learns that its child ended
    only by polling the child's node, and aiida-core polls test profiles with interval 0. While a
    QeFrameWorkChain waited on ph.x, that loop took half a core (py-spy: ``Runner._poll_process``, three
    database reads a look) from the two MPI ranks on this 2-core box. ``run``/``run_get_node`` make a
    fresh runner for every call (``Manager.create_runner(communicator=None)``), so the interval is given
    to every runner the manager creates, not only to the global one.
    """
    from aiida.manage import get_manager

    manager = get_manager()
    create_runner = manager.create_runner

    def create_polling_runner(*args, **kwargs):
        kwargs.setdefault('poll_interval', RUNNER_POLL_INTERVAL)
        return create_runner(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manager, 'create_runner', create_polling_runner)
        manager.set_runner(manager.create_runner())
        yield aiida_profile


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
    run([VERDI, '-p', profile, 'daemon', 'stop', '--timeout', '60'], env=env, timeout=120)


SLURM_SCRIPT = REPO / 'setup_profiles' / 'slurm' / 'local-slurm.sh'
SLURM_TOOLS = ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo', 'scancel')
SLURM_DB_CLIENTS = ('mariadb', 'mysql')


def _free_port_triple() -> int:
    """A port P with P, P + 1 and P + 2 free (slurmctld, slurmd, slurmdbd)."""
    import contextlib
    import socket

    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        try:
            with contextlib.ExitStack() as stack:
                for offset in range(3):
                    stack.enter_context(socket.socket()).bind(('', port + offset))
            return port
        except OSError:
            continue
    raise RuntimeError('no three adjacent free ports')


def _sql(client: str, statement: str) -> bool:
    """Run ``statement`` as root on the MySQL/MariaDB server at 127.0.0.1; whether it succeeded."""
    return (
        subprocess.run([client, '-h', '127.0.0.1', '-u', 'root', '-e', statement], capture_output=True).returncode == 0
    )


def _accounting_database_client() -> str | None:
    """The MySQL/MariaDB client when slurmdbd is installed and a server answers on 127.0.0.1 as root, else None."""
    client = next(filter(None, map(shutil.which, SLURM_DB_CLIENTS)), None)
    if not (client and shutil.which('slurmdbd') and shutil.which('sacctmgr')):
        return None
    return client if _sql(client, 'SELECT 1') else None


def slurm_has_accounting(cluster: pathlib.Path) -> bool:
    """Whether the ``local_slurm`` cluster runs slurmdbd (and so enforces accounts and QOS)."""
    return (cluster / 'slurmdbd.conf').is_file()


@pytest.fixture(scope='session')
def local_slurm(tmp_path_factory):
    """A single-node SLURM cluster (munged, slurmctld, slurmd) started by ``setup_profiles/slurm/local-slurm.sh``.

    With slurmdbd installed and a MySQL/MariaDB server on localhost, it also runs slurmdbd and enforces
    accounting, in a database of its own that is dropped afterwards (:func:`slurm_has_accounting`).
    ``SLURM_CONF`` points at it for the whole session; afterwards the daemons are stopped and checked
    to be gone, so nothing is left running.
    """
    missing = [tool for tool in SLURM_TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(
            f'SLURM is not installed ({", ".join(missing)}): apt-get install slurmctld slurmd slurm-client munge'
        )
    if os.geteuid() != 0:
        pytest.skip('the single-node SLURM needs root (slurmd starts the job steps)')
    directory = tmp_path_factory.mktemp('slurm')
    env = {**os.environ, 'SLURM_PORT': str(_free_port_triple())}
    database_client = _accounting_database_client()
    database = f'ionfield_test_slurm_{os.getpid()}'
    if database_client:
        env['SLURM_DB'] = database
    started = subprocess.run(
        ['bash', str(SLURM_SCRIPT), 'start', str(directory)], env=env, capture_output=True, text=True
    )
    previous = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(directory / 'slurm.conf')
    pids = [
        int((directory / f'{name}.pid').read_text())
        for name in ('munged', 'slurmctld', 'slurmd', 'slurmdbd')
        if (directory / f'{name}.pid').is_file()
    ]
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield directory
    finally:
        subprocess.run(['scancel', '--user', str(os.geteuid())], capture_output=True)
        stopped = subprocess.run(['bash', str(SLURM_SCRIPT), 'stop', str(directory)], capture_output=True, text=True)
        if database_client:
            _sql(database_client, f'DROP DATABASE IF EXISTS `{database}`')
        if previous is None:
            os.environ.pop('SLURM_CONF', None)
        else:
            os.environ['SLURM_CONF'] = previous
        left = [pid for pid in pids if pathlib.Path(f'/proc/{pid}').exists() and 'zombie' not in _state(pid)]
        assert stopped.returncode == 0 and not left, f'SLURM daemons left running: {left} {stopped.stderr}'


def _state(pid: int) -> str:
    try:
        return pathlib.Path(f'/proc/{pid}/status').read_text().split('State:')[1].split('\n')[0].lower()
    except (OSError, IndexError):
        return 'zombie'


@pytest.fixture(scope='session')
def slurm_codes(aiida_profile, local_slurm, tmp_path_factory):
    """``{label: code}`` of pw, ph, ionfield-train and ionfield-md on the ``core.slurm`` computer ``slurm-local``."""
    from aiida import orm

    from ionfield.plugins.setup.slurm import setup_slurm_computer

    workdir = tmp_path_factory.mktemp('slurm-scratch')
    codes = setup_slurm_computer('slurm-local', workdir, mpiprocs=2, echo=lambda *_: None)
    return {label: orm.load_code(full_label) for label, full_label in codes.items()}


@pytest.fixture(scope='session')
def laptop_profile(tmp_path_factory):
    """A laptop profile made by ``ionfield setup laptop`` (daemon running), shared by the session's CLI tests
    (set-up, main job, caching, faults); the daemon is stopped at the end of the session."""
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


@pytest.fixture
def aiida_localhost(aiida_profile, tmp_path_factory):
    """The project's ``localhost`` computer (``ensure_localhost_computer``), in place of aiida's fixture.

    aiida's fixture of this name makes a ``localhost`` computer without the prepend text that mpirun needs (as
    root: ``OMPI_ALLOW_RUN_AS_ROOT``); the QE fixtures then found and reused that computer, so pw.x failed
    whenever a test using it ran first (``pytest tests/plugins tests/faults``).
    """
    from ionfield.plugins.setup.localhost import ensure_localhost_computer

    computer, _ = ensure_localhost_computer('localhost', tmp_path_factory.mktemp('localhost') / 'scratch')
    return computer


@pytest.fixture
def generate_calc_job_node(aiida_localhost):
    """A stored ``CalcJobNode`` of ``ionfield.md`` or ``ionfield.train`` whose ``retrieved`` holds a parser fixture.

    As aiida-quantumespresso's fixture of the same name: a parser runs on real outputs without running a code::

        node = generate_calc_job_node('ionfield.md', 'completed')
        results, calcfunction = ParserFactory('ionfield.md').parse_from_node(node, store_provenance=False)

    ``test_name`` is a folder of ``tests/plugins/parsers/fixtures/<calculation>/``: what a job of
    ``ionfield.<calculation>`` retrieved, made by ``make_fixtures.py`` there. Its ``settings.json``, the run's
    input, becomes the ``settings`` input (unless ``inputs`` has one); every other file is retrieved. ``inputs``
    maps link labels to nodes (stored here) and ``metadata.options`` to options. ``files`` adds or replaces
    retrieved files (bytes) or drops them (None), for what a fixture cannot hold (a model package is too large).
    """
    from aiida import orm
    from aiida.common import LinkType
    from aiida.plugins.entry_point import format_entry_point_string

    from .plugins.parsers.make_fixtures import FIXTURES, SETTINGS

    def factory(
        entry_point_name: str,
        test_name: str | None = None,
        inputs: dict | None = None,
        files: dict[str, bytes | None] | None = None,
    ) -> orm.CalcJobNode:
        inputs = dict(inputs or {})
        options = inputs.pop('metadata', {}).get('options', {})
        retrieved = orm.FolderData()
        if test_name is not None:
            folder = FIXTURES / entry_point_name.removeprefix('ionfield.') / test_name
            assert folder.is_dir(), f'no parser fixture {folder}'
            retrieved.base.repository.put_object_from_tree(str(folder))
            if (folder / SETTINGS).is_file():
                retrieved.base.repository.delete_object(SETTINGS)
                inputs.setdefault('settings', orm.Dict(json.loads((folder / SETTINGS).read_text())))
        for name, content in (files or {}).items():
            with contextlib.suppress(FileNotFoundError):
                retrieved.base.repository.delete_object(name)
            if content is not None:
                retrieved.base.repository.put_object_from_bytes(content, name)
        for value in inputs.values():
            value.store()  # before the node exists: an unstored node of a stored computer must not meet a flush

        node = orm.CalcJobNode(
            computer=aiida_localhost, process_type=format_entry_point_string('aiida.calculations', entry_point_name)
        )
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        node.set_option('max_wallclock_seconds', 1800)
        for name, value in options.items():
            node.set_option(name, value)
        for label, value in inputs.items():
            node.base.links.add_incoming(value, LinkType.INPUT_CALC, label)
        node.store()
        retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
        retrieved.store()
        remote = orm.RemoteData(computer=aiida_localhost, remote_path='/tmp')
        remote.base.links.add_incoming(node, LinkType.CREATE, 'remote_folder')
        remote.store()
        return node

    return factory


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
        command = [sys.executable, '-m', 'ionfield.models.train.runner', '--workdir', str(workdir)]
        command += ['--dataset', str(workdir / 'dataset.npz'), '--settings', str(workdir / 'settings.json')]
        code = subprocess.run(
            command, env={**os.environ, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True
        ).returncode
        runs.append((code, workdir))
    return data, runs


def profile_python(profile: str, env: dict, code: str, timeout: float = 120):
    """Run ``code`` with ``profile`` loaded in a fresh interpreter (the CLI's environment); return what it
    prints as JSON. For tests that look into a profile whose daemon runs in another process."""
    script = f'import json\nfrom aiida import load_profile, orm\nload_profile({profile!r})\n{code}'
    result = run([sys.executable, '-c', script], env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
