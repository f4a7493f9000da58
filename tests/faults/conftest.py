"""The fault-injection suite: a fault per test, the exit code or message the user sees, and nothing lost.

"Nothing lost" is checked the same way for every fault: a ledger of every finished label
(``DatasetData``), model (``ModelData``) and trajectory (``MDTrajectoryData``) in the profile, with a
digest of the files of each, is taken before the fault and must be found intact afterwards. The
``finished_work`` fixture makes sure the ledger is not empty: one real label (if QE is installed),
one trained model and one real MD trajectory.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import threading
import time

import pytest
from aiida import orm
from aiida.engine import run_get_node

from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import ModelData
from ionfield.plugins.data.trajectory import MDTrajectoryData

LEDGER_TYPES = (DatasetData, ModelData, MDTrajectoryData)


def _digest(node: orm.Node) -> str:
    digest = hashlib.sha256()
    for root, _, names in node.base.repository.walk():
        for name in sorted(names):
            path = root / name
            digest.update(str(path).encode())
            digest.update(node.base.repository.get_object_content(str(path), mode='rb'))
    return digest.hexdigest()


def ledger() -> dict[str, str]:
    """``{uuid: digest of its files}`` of every stored label, model and trajectory."""
    query = orm.QueryBuilder().append(LEDGER_TYPES, project=['*'])
    return {node.uuid: _digest(node) for (node,) in query.iterall()}


def assert_nothing_lost(before: dict[str, str]) -> None:
    after = ledger()
    lost = sorted(set(before) - set(after))
    changed = sorted(uuid for uuid in set(before) & set(after) if before[uuid] != after[uuid])
    assert not lost and not changed, f'finished work lost: {lost}, changed: {changed}'


@pytest.fixture(scope='session')
def finished_work(aiida_profile, md_code, trained_members, request):
    """A trained model and a real MD trajectory (and a real QE label when QE is installed), all stored."""
    from ionfield.models.structures.reference import alpha_li3n
    from ionfield.plugins.calculations.md import MDCalculation

    _, runs = trained_members
    model = ModelData(runs[0][1] / 'model.nequip.zip', species=['Li', 'N'], r_max=4.5, has_bec=True).store()
    settings = {'steps': 10, 'temperature_K': 400, 'log_every': 5, 'trajectory_every': 5}
    results, node = run_get_node(
        MDCalculation,
        code=md_code,
        structure=orm.StructureData(ase=alpha_li3n().repeat((2, 2, 1))),
        model=model,
        settings=orm.Dict(settings),
        metadata={'options': {'max_wallclock_seconds': 600}},
    )
    assert node.is_finished_ok, node.exit_message
    work = {'model': model, 'trajectory': results['trajectory']}
    try:
        qe_engine = request.getfixturevalue('qe_engine')
    except pytest.skip.Exception:
        return work
    from ionfield.models.structures.reference import get_reference_structure
    from ionfield.workflows.label.workchain import LabelWorkChain

    builder = LabelWorkChain.get_builder_from_protocol(
        {'li3n': orm.StructureData(ase=get_reference_structure('alpha-Li3N'))},
        protocol='fast',
        bec=False,
        overrides={'pseudo_family': qe_engine['pseudo_family']},
        pw_code=qe_engine['pw_code'],
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return {**work, 'dataset': results['dataset']}


class SignalKiller:
    """Sends SIGKILL to one rank of the first ``times`` runs of ``program`` under ``root``, once each has started.

    What the OOM killer or a failing node does to a running job: one MPI rank dies by a signal mid-run, and
    mpirun takes the others down. A background thread watches ``/proc`` for processes called ``program`` whose
    working directory is under ``root`` (a computer's work directory, so nothing else on the machine is
    touched) and kills one rank of each new job once its stdout ``aiida.out`` shows ``started``.
    """

    def __init__(self, program: str, root: str, started: str, times: int = 1):
        self.program, self.root, self.started, self.times = program, os.path.realpath(root), started, times
        self.killed: list[str] = []  # the working directories of the killed jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> SignalKiller:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.is_set() and len(self.killed) < self.times:
            for pid, workdir in self._running():
                if workdir not in self.killed and self._has_started(workdir):
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(workdir)
                    break
            time.sleep(0.05)

    def _running(self) -> list[tuple[int, str]]:
        """``(pid, working directory)`` of every process called ``program`` under ``root``."""
        found = []
        for entry in pathlib.Path('/proc').iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / 'comm').read_text().strip() != self.program:
                    continue
                workdir = os.path.realpath(entry / 'cwd')
            except OSError:  # gone meanwhile, or not ours
                continue
            if workdir.startswith(self.root + os.sep):
                found.append((int(entry.name), workdir))
        return found

    def _has_started(self, workdir: str) -> bool:
        try:
            return self.started in (pathlib.Path(workdir) / 'aiida.out').read_text(errors='replace')
        except OSError:
            return False
