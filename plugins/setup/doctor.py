"""``ionfield doctor``: read-only checks of everything a run needs, each with the command that fixes it.

Nothing here writes: the configuration is read with ``create=False``, the storage is opened only
to query, and the daemon and broker are only asked for their status.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

from .localhost import QE_CODES, QE_INSTALL_HINT, QE_TOOLS, ROOT_MPI_LINES, THREAD_LINES
from .profiles import CACHED_CALCULATIONS
from .pseudos import DEFAULT_ELEMENTS

__all__ = ('OK', 'WARN', 'FAIL', 'INFO', 'Check', 'run_checks')

OK, WARN, FAIL, INFO = 'ok', 'warn', 'fail', 'info'


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def run_checks(profile_name: str | None = None) -> Iterator[Check]:
    """Yield the checks in the order a user would fix them; stop early where later checks cannot run."""
    yield from _check_qe()
    profile = yield from _check_profile(profile_name)
    if profile is None:
        yield from _check_torch()
        return
    yield from _check_storage(profile)
    yield from _check_broker_and_daemon(profile)
    yield from _check_localhost_and_codes(profile)
    yield from _check_pseudos(profile)
    yield from _check_caching(profile)
    yield from _check_torch()


def _check_qe() -> Iterator[Check]:
    missing = [tool for tool in QE_TOOLS if shutil.which(tool) is None]
    if missing:
        yield Check('Quantum ESPRESSO', FAIL, f'not found on PATH: {", ".join(missing)}', QE_INSTALL_HINT)
    else:
        yield Check('Quantum ESPRESSO', OK, ', '.join(shutil.which(tool) for tool in QE_TOOLS))


def _check_profile(profile_name):
    from aiida.common.exceptions import ConfigurationError, MissingConfigurationError, ProfileConfigurationError
    from aiida.manage.configuration import get_config

    try:
        config = get_config(create=False)
    except (MissingConfigurationError, ConfigurationError) as exception:
        yield Check('profile', FAIL, f'no AiiDA configuration ({exception})', 'ionfield setup laptop')
        return None
    try:
        profile = config.get_profile(profile_name)
    except ProfileConfigurationError as exception:
        name = profile_name or '(default)'
        fix = f'ionfield setup laptop --profile {profile_name}' if profile_name else 'ionfield setup laptop'
        yield Check('profile', FAIL, f'profile {name} not found: {exception}', fix)
        return None
    default = ' (default)' if config.default_profile_name == profile.name else ''
    yield Check(
        'profile',
        OK,
        f'{profile.name}{default}: storage {profile.storage_backend}, broker {profile.process_control_backend}',
    )
    return profile


def _check_storage(profile) -> Iterator[Check]:
    from aiida.manage import get_manager

    try:
        get_manager().load_profile(profile.name, allow_switch=True)
        storage = get_manager().get_profile_storage()
        nodes = storage.get_info().get('entities', {}).get('Nodes', {}).get('count', '?')
        yield Check('storage', OK, f'{type(storage).__name__}, {nodes} nodes')
    except Exception as exception:  # any failure to open the storage is the user's problem to see
        yield Check(
            'storage',
            FAIL,
            f'cannot open the storage of `{profile.name}`: {exception}',
            f'verdi -p {profile.name} storage migrate',
        )


def _check_broker_and_daemon(profile) -> Iterator[Check]:
    from aiida.engine.daemon.client import DaemonClient

    client = DaemonClient(profile)
    running = client.is_daemon_running
    if profile.process_control_backend is None:
        yield Check(
            'broker',
            FAIL,
            'the profile has no broker: processes cannot be submitted',
            f'verdi profile configure-broker {profile.name} core.zeromq',
        )
    elif profile.process_control_backend == 'core.zeromq':
        detail = 'ZeroMQ (built in, started with the daemon)'
        yield Check(
            'broker',
            OK if running else WARN,
            detail + ('' if running else ': not running because the daemon is not'),
            None if running else f'verdi -p {profile.name} daemon start',
        )
    else:
        yield from _check_rabbitmq(profile)
    if running:
        try:
            workers = client.get_number_of_workers(timeout=5)
        except Exception:  # the status call itself can time out on a busy daemon
            workers = 0
        yield Check('daemon', OK, f'running with {workers} worker(s)' if workers else 'running')
    else:
        yield Check(
            'daemon', FAIL, 'not running: submitted processes will wait', f'verdi -p {profile.name} daemon start'
        )


def _check_rabbitmq(profile) -> Iterator[Check]:
    from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

    cfg = profile.process_control_config
    try:
        detect_rabbitmq_config(
            protocol=cfg.get('broker_protocol'),
            username=cfg.get('broker_username'),
            password=cfg.get('broker_password'),
            host=cfg.get('broker_host'),
            port=cfg.get('broker_port'),
            virtual_host=cfg.get('broker_virtual_host'),
        )
    except ConnectionError:
        yield Check(
            'broker',
            FAIL,
            f'RabbitMQ not reachable at {cfg.get("broker_host")}:{cfg.get("broker_port")}',
            'sudo rabbitmq-server -detached',
        )
    else:
        yield Check('broker', OK, f'RabbitMQ at {cfg.get("broker_host")}:{cfg.get("broker_port")}')


def _check_localhost_and_codes(profile) -> Iterator[Check]:
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from .settings import get_settings

    settings = get_settings()
    label = settings.get('computer', 'localhost')
    fix = f'ionfield setup {settings.get("kind", "laptop")} -p {profile.name}'
    try:
        computer = orm.load_computer(label)
    except NotExistent:
        yield Check('computer', FAIL, f'no computer `{label}`', fix)
        return
    if not computer.is_configured:
        yield Check(
            'computer',
            FAIL,
            f'`{label}` is not configured for the default user',
            f'verdi computer configure core.local {label}',
        )
        return
    prepend = computer.get_prepend_text()
    missing = [line for line in THREAD_LINES if line not in prepend]
    if os.geteuid() == 0 and computer.transport_type == 'core.local':
        missing += [line for line in ROOT_MPI_LINES if line not in prepend]
    if missing:
        yield Check(
            'computer',
            WARN,
            f'`{label}` prepend text lacks: {"; ".join(missing)}',
            f'verdi computer set-prepend-text ... (add: {"; ".join(missing)})',
        )
    else:
        yield Check(
            'computer',
            OK,
            f'{label}: {computer.transport_type}/{computer.scheduler_type}, '
            f'{computer.get_default_mpiprocs_per_machine()} MPI ranks, OMP_NUM_THREADS=1',
        )
    yield from _check_login_shell(computer)

    if settings.get('without_qe'):
        yield Check('codes', INFO, 'set up without the QE engine (`--without-qe`)')
        return
    for code_label, (_binary, plugin) in QE_CODES.items():
        full = f'{code_label}@{label}'
        try:
            code = orm.load_code(full)
        except NotExistent:
            yield Check(f'code {full}', FAIL, 'missing', fix)
            continue
        executable = str(code.filepath_executable)
        if not os.access(executable, os.X_OK):
            yield Check(f'code {full}', FAIL, f'{executable} is not executable', QE_INSTALL_HINT)
        else:
            yield Check(f'code {full}', OK, f'{executable} ({plugin})')


def _check_login_shell(computer) -> Iterator[Check]:
    """A ``core.local`` computer whose transport starts a login shell for every command (aiida-core's default).

    Every job-status check (each second on our computers) then sources the user's profile; pyenv's or
    conda's init there costs a tenth of a second or more, taken from the MPI ranks of the running job.
    """
    if computer.transport_type != 'core.local' or not computer.get_configuration().get('use_login_shell', True):
        return
    started = time.perf_counter()
    try:
        subprocess.run(['bash', '-l', '-c', 'true'], capture_output=True, timeout=30)
        cost = f'{time.perf_counter() - started:.2f} s'
    except subprocess.TimeoutExpired:
        cost = 'over 30 s'
    yield Check(
        'login shell',
        WARN,
        f'`{computer.label}` runs every transport command in a login shell ({cost} each here), '
        'which slows the running jobs',
        f'verdi computer configure core.local -n --safe-interval 0 --no-use-login-shell {computer.label}',
    )


def _check_pseudos(profile) -> Iterator[Check]:
    from aiida import orm

    from .settings import get_settings

    label = get_settings().get('pseudo_family')
    fix = f'ionfield setup {get_settings().get("kind", "laptop")} -p {profile.name}'
    if label is None:
        yield Check('pseudopotentials', FAIL, 'no pseudo family chosen for this profile', fix)
        return
    groups = orm.QueryBuilder().append(orm.Group, filters={'label': label}).all(flat=True)
    if not groups:
        yield Check('pseudopotentials', FAIL, f'family `{label}` not found', fix)
        return
    family = groups[0]
    elements = set(getattr(family, 'elements', []) or [])
    missing = sorted(set(DEFAULT_ELEMENTS) - elements)
    if missing:
        yield Check(
            'pseudopotentials',
            WARN,
            f'`{label}` lacks {", ".join(missing)} (reference systems need them)',
            'ionfield setup laptop --pseudo-family pslibrary',
        )
        return
    try:
        cutoffs = family.get_recommended_cutoffs(elements=tuple(DEFAULT_ELEMENTS), unit='Ry')
        detail = f'{label}: {len(elements)} elements, recommended cutoffs {cutoffs[0]:.0f}/{cutoffs[1]:.0f} Ry'
    except Exception:  # a plain family without cutoffs
        detail = f'{label}: {len(elements)} elements (no recommended cutoffs recorded)'
    yield Check('pseudopotentials', OK, detail)


def _check_caching(profile) -> Iterator[Check]:
    from aiida.manage.configuration import get_config

    enabled = get_config(create=False).get_option('caching.enabled_for', scope=profile.name) or []
    missing = [identifier for identifier in CACHED_CALCULATIONS if identifier not in enabled]
    if missing:
        yield Check(
            'caching',
            WARN,
            f'not enabled for {", ".join(missing)}: identical DFT labels would be recomputed',
            f'verdi -p {profile.name} config set caching.enabled_for --append {" ".join(missing)}',
        )
    else:
        yield Check('caching', OK, 'enabled for pw.x and ph.x labels')


def _check_torch() -> Iterator[Check]:
    try:
        import torch
    except ImportError as exception:
        yield Check('torch', FAIL, f'cannot import torch: {exception}', 'pip install torch==2.13.0')
        return
    ncores = len(os.sched_getaffinity(0))
    threads = torch.get_num_threads()
    omp = os.environ.get('OMP_NUM_THREADS')
    detail = (
        f'{torch.__version__}, {threads} intra-op thread(s) in this shell '
        f'(OMP_NUM_THREADS={omp or "unset"}), {ncores} cores'
    )
    if threads > 1 and ncores <= 4:  # jobs are covered by the computer's prepend text; this is the shell
        yield Check(
            'torch threads',
            INFO,
            detail + '; for torch work in this shell one thread per process is ~10x faster on small machines',
            'export OMP_NUM_THREADS=1',
        )
    else:
        yield Check('torch threads', OK, detail)
    yield from _check_gpu(torch)


def _check_gpu(torch) -> Iterator[Check]:
    smi = shutil.which('nvidia-smi')
    if torch.cuda.is_available():
        yield Check('GPU', OK, f'{torch.cuda.device_count()} CUDA device(s): {torch.cuda.get_device_name(0)}')
    elif smi:
        try:
            name = subprocess.run([smi, '-L'], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            name = 'nvidia-smi did not answer'
        yield Check(
            'GPU',
            WARN,
            f'{name or "a GPU"} present but this torch ({torch.__version__}) has no CUDA',
            'pip install "torch>=2.6,<2.14" from a CUDA index',
        )
    else:
        yield Check('GPU', INFO, 'none: MD (ASE backend) and training run on the CPU')
    try:
        import torch_sim  # noqa: F401

        yield Check('torch-sim', INFO, 'installed: `backend: torchsim` and `ionfield-md --batch` run here')
    except ImportError:
        yield Check(
            'torch-sim',
            INFO,
            'not in this environment: MD runs on the ASE backend; the torchsim backend needs the gpu environment '
            '(Python >= 3.12, `bash setup_profiles/install.sh gpu`)',
        )
