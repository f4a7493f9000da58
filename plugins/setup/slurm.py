"""``ionfield setup slurm``: a ``core.slurm`` computer on this machine, with our codes on it.

For a group server where SLURM runs on the machine that runs the daemon (``sbatch`` and ``squeue`` work
here), and for the single-node cluster of ``setup_profiles/slurm/local-slurm.sh``. A cluster reached
over SSH is set up with the YAML files of ``setup_profiles/cluster/`` instead. The queue is asked
before anything is stored, so a machine without a working SLURM changes nothing.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable

from .localhost import ensure_localhost_computer, ensure_qe_codes, ensure_runner_codes, find_qe_executables
from .profiles import SetupError

__all__ = ('SLURM_TOOLS', 'slurm_partitions', 'setup_slurm_computer')

SLURM_TOOLS = ('sbatch', 'squeue', 'scancel', 'sinfo')
LOCAL_SLURM_HINT = 'start one with `bash setup_profiles/slurm/local-slurm.sh start DIR` and export its SLURM_CONF'


def slurm_partitions(timeout: float = 20) -> dict[str, str]:
    """``{partition: state}`` as ``sinfo`` reports them, or ``SetupError`` when SLURM does not answer."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        found = ', '.join(missing)
        raise SetupError(f'SLURM clients not found: {found} (apt-get install slurm-client); {LOCAL_SLURM_HINT}')
    try:
        result = subprocess.run(['sinfo', '-h', '-o', '%P %a'], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exception:
        message = f'`sinfo` did not answer in {timeout:g} s: is slurmctld running? {LOCAL_SLURM_HINT}'
        raise SetupError(message) from exception
    if result.returncode != 0:
        raise SetupError(f'`sinfo` failed: {result.stderr.strip()[-300:]}. {LOCAL_SLURM_HINT}')
    partitions = {}
    for line in result.stdout.splitlines():
        name, _, state = line.partition(' ')
        partitions[name.rstrip('*')] = state.strip()
    if not partitions:
        raise SetupError(f'`sinfo` lists no partition. {LOCAL_SLURM_HINT}')
    return partitions


def setup_slurm_computer(
    label: str, workdir: pathlib.Path, mpiprocs: int | None = None, with_qe: bool = True, echo: Callable = print
) -> dict[str, str]:
    """Create (or reuse) the ``core.local`` + ``core.slurm`` computer ``label`` and our codes; return their labels."""
    partitions = slurm_partitions()
    executables = find_qe_executables() if with_qe else {}
    computer, created = ensure_localhost_computer(label, workdir, mpiprocs, scheduler='core.slurm')
    state = ', '.join(f'{name} ({value})' for name, value in partitions.items())
    echo(f'{"computer":<18} {"created" if created else "exists "}  {computer.label} (core.slurm; partitions {state})')
    codes = {}
    found = dict(ensure_runner_codes(computer))
    if with_qe:
        found.update(ensure_qe_codes(computer, executables))
    for name, (code, code_created) in found.items():
        echo(f'{"code " + name:<18} {"created" if code_created else "exists "}  {code.full_label}')
        codes[name] = code.full_label
    if os.environ.get('SLURM_CONF'):
        echo(
            f'note: SLURM_CONF={os.environ["SLURM_CONF"]}: the daemon polls the queue with it, so (re)start the daemon '
            'from a shell where it is set (`verdi daemon restart --reset`)'
        )
    return codes
