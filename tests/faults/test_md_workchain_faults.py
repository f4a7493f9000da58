"""``MDWorkChain`` with the real ``ionfield-md``: a run killed after a checkpoint continues by itself.

What a walltime or a node failure does to a long field-MD run, injected on the localhost computer: the
first ``ionfield-md`` process is killed with SIGKILL once it has written its first checkpoint. The
workchain must continue from that state and end with exactly the trajectory an uninterrupted run gives
(the Langevin noise continues from the saved generator state), so nothing is lost or repeated.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from ionfield.models.md.engine import STATE_FILE
from ionfield.models.structures.reference import alpha_li3n
from ionfield.plugins.calculations.md import MDCalculation
from ionfield.workflows.md.workchain import MDWorkChain

pytestmark = [pytest.mark.slow, pytest.mark.fault]

SETTINGS = {
    'steps': 300,
    'temperature_K': 300,
    'friction_per_fs': 0.05,
    'timestep_fs': 0.5,
    'log_every': 10,
    'trajectory_every': 10,
    'checkpoint_every': 100,
    'seed': 11,
}


class KillAfterCheckpoint(threading.Thread):
    """SIGKILL the first ``ionfield-md`` process whose working directory holds a checkpoint."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.killed: str | None = None

    def run(self):
        while not self.stop.is_set() and self.killed is None:
            for entry in os.scandir('/proc'):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f'/proc/{entry.name}/cmdline', 'rb') as handle:
                        command = handle.read().split(b'\0')
                    if not any(part.endswith(b'ionfield-md') for part in command):
                        continue
                    workdir = os.readlink(f'/proc/{entry.name}/cwd')
                except OSError:  # gone meanwhile, or not ours
                    continue
                if os.path.exists(os.path.join(workdir, STATE_FILE)):
                    os.kill(int(entry.name), signal.SIGKILL)
                    self.killed = workdir
                    break
            time.sleep(0.02)


def test_killed_run_continues_to_the_uninterrupted_trajectory(md_code, finished_work):
    structure = orm.StructureData(ase=alpha_li3n().repeat((2, 2, 2)))
    builder = MDWorkChain.get_builder_from_protocol(
        md_code,
        structure,
        model=finished_work['model'],
        overrides={'settings': SETTINGS},
        options={'max_wallclock_seconds': 600},
    )
    killer = KillAfterCheckpoint()
    killer.start()
    try:
        results, node = run_get_node(builder)
    finally:
        killer.stop.set()
    assert killer.killed is not None, 'the run ended before its first checkpoint could be killed'
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'
    first, second = sorted(node.called, key=lambda child: child.ctime)
    assert first.exit_status == MDCalculation.exit_codes.ERROR_NO_RESULT.status
    assert second.inputs.parent_folder.uuid == first.outputs.remote_folder.uuid  # continued, not restarted

    _, reference = run_get_node(
        MDCalculation,
        code=md_code,
        structure=structure,
        model=finished_work['model'],
        settings=orm.Dict(builder.md.settings.get_dict()),
        metadata={'options': {'max_wallclock_seconds': 600}},
    )
    assert reference.is_finished_ok, reference.exit_message
    continued, uninterrupted = results['trajectory'].read(), reference.outputs.trajectory.read()
    np.testing.assert_array_equal(continued.steps, np.arange(0, SETTINGS['steps'] + 1, SETTINGS['trajectory_every']))
    np.testing.assert_array_equal(continued.steps, uninterrupted.steps)
    np.testing.assert_allclose(continued.positions, uninterrupted.positions, rtol=0, atol=1e-9)
