"""What counts as a DFT job killed from outside, the evidence ``ScfWorkChain``/``DfptWorkChain`` rerun it on.

The reruns themselves, with a real pw.x and ph.x killed by SIGKILL, are in ``tests/faults/test_label_faults.py``.
"""

from __future__ import annotations

import pytest

from ionfield.workflows.label.qe import (
    DfptWorkChain,
    PhCalculation,
    PwCalculation,
    ScfWorkChain,
    kill_signal_in,
    killed_job_exit_codes,
)

OPEN_MPI = """--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun noticed that process rank 0 with PID 0 on node vm exited on signal {number} ({name}).
--------------------------------------------------------------------------
"""  # what a 2-rank pw.x under Debian's Open MPI left in _scheduler-stderr.txt after `kill -9` of rank 0

KILLED = {
    'Open MPI, kill -9': OPEN_MPI.format(number=9, name='Killed'),
    'MPICH': '=   PID 4242 RUNNING AT node7\n=   KILLED BY SIGNAL: 9 (Killed)\n',
    'srun': 'srun: error: nid001234: task 1: Killed\nsrun: Terminating StepId=77.0\n',
    'SLURM cgroup OOM': 'slurmstepd: error: Detected 1 oom_kill event in StepId=77.0. Some of the step tasks have been '
    'OOM Killed.\n',
    'srun OOM': 'srun: error: nid001234: task 0: Out Of Memory\n',
    'no MPI launcher': "/scratch/ab/cd/_aiidasubmit.sh: line 11: 12345 Killed                  '/usr/bin/pw.x' "
    "'-in' 'aiida.in' > 'aiida.out'\n",
}
NOT_KILLED = {
    'nothing': '',
    'segmentation fault': OPEN_MPI.format(number=11, name='Segmentation fault'),
    'SIGTERM (scancel, walltime)': OPEN_MPI.format(number=15, name='Terminated'),
    'QE stopped itself': 'MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD\nwith errorcode 1.\n',
    'SLURM time limit': 'slurmstepd: error: *** JOB 77 ON node7 CANCELLED AT 2026-11-30T10:00:00 DUE TO TIME LIMIT ***',
}


@pytest.mark.parametrize('stderr', KILLED.values(), ids=KILLED.keys())
def test_a_kill_is_recognised_in_the_scheduler_stderr(stderr):
    assert 'SIGKILL' in kill_signal_in(stderr)


@pytest.mark.parametrize('stderr', NOT_KILLED.values(), ids=NOT_KILLED.keys())
def test_a_crash_or_a_deliberate_stop_is_not_a_kill(stderr):
    """A code that crashes would crash again, and a job stopped on purpose should stay stopped: not rerun."""
    assert kill_signal_in(stderr) is None


@pytest.mark.parametrize(('workchain', 'calculation'), [(ScfWorkChain, PwCalculation), (DfptWorkChain, PhCalculation)])
def test_the_kill_handler_comes_first_and_sees_only_output_cut_short(workchain, calculation):
    """Only runs whose output was cut short or that the scheduler calls killed; before the physics handlers."""
    handlers = sorted(workchain.get_process_handlers(), key=lambda handler: handler.priority, reverse=True)
    assert handlers[0].__name__ == 'handle_killed_by_signal'
    assert 'ERROR_KILLED_BY_SIGNAL' in workchain.exit_codes
    names = {label for label, code in calculation.exit_codes.items() if code in killed_job_exit_codes(calculation)}
    assert {'ERROR_OUTPUT_STDOUT_INCOMPLETE', 'ERROR_OUTPUT_FILES', 'ERROR_SCHEDULER_OUT_OF_MEMORY'} <= names
    assert not any('CONVERGENCE' in name or 'WALLTIME' in name for name in names)
