"""The localhost computer and the Quantum ESPRESSO codes on it.

Jobs on small machines run with ``OMP_NUM_THREADS=1`` (torch's default of one thread per core made
nequip 10x slower on a 2-core box, and QE is run with MPI ranks instead of threads). Open MPI refuses
to run as root unless told otherwise, so the computer's prepend text says so when set up by root.
"""

from __future__ import annotations

import os
import pathlib
import shutil

from .profiles import SetupError

__all__ = (
    'QE_CODES',
    'QE_TOOLS',
    'find_qe_executables',
    'localhost_prepend_text',
    'ensure_localhost_computer',
    'ensure_code',
    'ensure_qe_codes',
    'ensure_runner_codes',
    'RUNNER_CODES',
)

QE_CODES = {'pw': ('pw.x', 'quantumespresso.pw'), 'ph': ('ph.x', 'quantumespresso.ph')}
#: Our own runners, installed as console scripts next to this interpreter: label -> (script, CalcJob plugin).
RUNNER_CODES = {
    'ionfield-train': ('ionfield-train', 'ionfield.train'),
    'ionfield-md': ('ionfield-md', 'ionfield.md'),
}
"""Code label -> (executable, default calculation plugin)."""

QE_TOOLS = ('pw.x', 'ph.x', 'ld1.x', 'mpirun')
QE_INSTALL_HINT = 'sudo apt-get install quantum-espresso quantum-espresso-data openmpi-bin'

THREAD_LINES = ('export OMP_NUM_THREADS=1',)
ROOT_MPI_LINES = ('export OMPI_ALLOW_RUN_AS_ROOT=1', 'export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1')


def find_qe_executables(tools=QE_TOOLS) -> dict[str, str]:
    """Return the absolute path of each QE tool, or raise ``SetupError`` naming the missing ones."""
    found = {tool: shutil.which(tool) for tool in tools}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise SetupError(
            f'Quantum ESPRESSO is not installed: {", ".join(missing)} not found on PATH. Install it with '
            f'`{QE_INSTALL_HINT}` (or pass `--without-qe` to set up a profile without the QE engine).'
        )
    return found


def localhost_prepend_text(is_root: bool | None = None) -> str:
    is_root = os.geteuid() == 0 if is_root is None else is_root
    lines = list(THREAD_LINES) + (list(ROOT_MPI_LINES) if is_root else [])
    return '\n'.join(lines)


def default_mpiprocs() -> int:
    """One MPI rank per core the process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def ensure_localhost_computer(
    label: str, workdir: pathlib.Path, mpiprocs: int | None = None, scheduler: str = 'core.direct'
):
    """Return ``(computer, created)``: a configured ``core.local`` computer called ``label``.

    ``scheduler`` is ``core.direct`` (jobs start at once) or ``core.slurm`` (a SLURM cluster whose
    ``sbatch`` and ``squeue`` work on this machine: a group server, or ``setup_profiles/slurm/local-slurm.sh``).

    The transport runs its commands in a plain ``bash``, not a login shell (aiida-core's default). The
    job-status check runs every second, and a login shell sources the user's profile each time. With
    pyenv's init there, a check cost 130-160 ms instead of 10 ms, and a 2-rank pw.x beside the checks
    ran 1.14x slower on a 2-core machine (``benchmarks/job_check_shell.py``). Jobs still get their
    environment: the daemon's, which ``ionfield setup`` starts from this environment, plus the
    computer's prepend text.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
        created = False
        if (computer.transport_type, computer.scheduler_type) != ('core.local', scheduler):
            raise SetupError(
                f'a computer `{label}` exists with transport `{computer.transport_type}` and scheduler '
                f'`{computer.scheduler_type}`, not `core.local` and `{scheduler}`; it was left untouched. '
                'Pass another `--computer` label.'
            )
    except NotExistent:
        what = 'This machine' if scheduler == 'core.direct' else f'The {scheduler.split(".")[-1]} queue of this machine'
        computer = orm.Computer(
            label=label,
            hostname='localhost',
            description=f'{what}, set up by `ionfield setup`.',
            transport_type='core.local',
            scheduler_type=scheduler,
            workdir=str(workdir),
        )
        computer.set_mpirun_command(['mpirun', '-np', '{tot_num_mpiprocs}'])
        computer.set_default_mpiprocs_per_machine(mpiprocs or default_mpiprocs())
        computer.set_prepend_text(localhost_prepend_text())
        computer.store()
        created = True
    if not computer.is_configured:  # a previous set-up stopped between store and configure
        computer.configure(safe_interval=0, use_login_shell=False)
    computer.set_minimum_job_poll_interval(1)
    return computer, created


def ensure_code(label: str, computer, executable: str, plugin: str):
    """Return ``(code, created)`` for ``label@computer``; an existing one must point to the same executable."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        code = orm.load_code(f'{label}@{computer.label}')
    except NotExistent:
        code = orm.InstalledCode(
            label=label,
            computer=computer,
            filepath_executable=executable,
            default_calc_job_plugin=plugin,
            description=f'{executable} on {computer.label}, set up by `ionfield setup`.',
        )
        return code.store(), True
    except MultipleObjectsError as exception:
        raise SetupError(f'several codes are called `{label}@{computer.label}`: {exception}') from exception
    if str(code.filepath_executable) != executable:
        raise SetupError(
            f'the code `{label}@{computer.label}` exists but runs `{code.filepath_executable}`, not `{executable}`; '
            f'it was left untouched. Remove it (`verdi code delete {code.pk}`) or fix your PATH.'
        )
    return code, False


def ensure_qe_codes(computer, executables: dict[str, str]) -> dict[str, tuple[object, bool]]:
    """Set up ``pw`` and ``ph`` on ``computer``; return ``{label: (code, created)}``."""
    return {
        label: ensure_code(label, computer, executables[binary], plugin) for label, (binary, plugin) in QE_CODES.items()
    }


def runner_executable(script: str) -> str:
    """Absolute path of one of our console scripts: next to this interpreter, else on PATH."""
    import shutil
    import sys

    local = pathlib.Path(sys.executable).parent / script
    if local.is_file():
        return str(local)
    found = shutil.which(script)
    if found is None:
        raise SetupError(f'`{script}` is not installed (pip install aiida-ionfield in this environment)')
    return found


def ensure_runner_codes(computer) -> dict[str, tuple[object, bool]]:
    """Set up our runner codes (``ionfield-train``, ``ionfield-md``) on ``computer``.

    Returns ``{label: (code, created)}``.
    """
    return {
        label: ensure_code(label, computer, runner_executable(script), plugin)
        for label, (script, plugin) in RUNNER_CODES.items()
    }
