"""Faults on the cluster path (the single-node SLURM of ``local_slurm``): a job killed mid-run, a walltime hit.

A training job cancelled with ``scancel`` while it trains: ``TrainWorkChain`` sees ``ERROR_NO_RESULT``
(400) and resumes from the run's checkpoint in its remote folder. An MD job that hits its walltime is
killed by SLURM: ``ERROR_NO_RESULT`` (500), the frames written so far and the checkpoint are kept,
and a continuation from its ``remote_folder`` finishes the run.
"""

from __future__ import annotations

import pathlib
import subprocess
import threading
import time

import pytest
from aiida import orm
from aiida.common import timezone
from aiida.engine import run_get_node

from ionfield.models.structures.reference import alpha_li3n
from ionfield.plugins.calculations.md import MDCalculation
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.job_options import JobRequest
from ionfield.workflows.train.workchain import TrainWorkChain

from ..models.synthetic import synthetic_dataset
from .conftest import assert_nothing_lost, ledger

pytestmark = [pytest.mark.slow, pytest.mark.fault]


def _cancel_when(process_type: str, ready, timeout: float = 300) -> tuple[threading.Thread, dict]:
    """``scancel`` the first job of ``process_type`` created from now on, once ``ready(workdir)`` holds."""
    since = timezone.now()
    cancelled: dict = {}

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            query = orm.QueryBuilder().append(
                orm.CalcJobNode, filters={'process_type': process_type, 'ctime': {'>': since}}, project=['*']
            )
            jobs = sorted((row[0] for row in query.all()), key=lambda n: n.ctime)
            if jobs and jobs[0].get_job_id() and jobs[0].get_remote_workdir():
                if ready(pathlib.Path(jobs[0].get_remote_workdir())):
                    subprocess.run(['scancel', jobs[0].get_job_id()], check=True)
                    cancelled['job_id'] = jobs[0].get_job_id()
                    return
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, cancelled


def test_training_job_killed_mid_run_resumes_from_its_checkpoint(slurm_codes, finished_work):
    before = ledger()
    builder = TrainWorkChain.get_builder()
    builder.train.code = slurm_codes['ionfield-train']
    builder.train.dataset = DatasetData(synthetic_dataset(12, bec_share=0.5)).store()
    builder.train.settings = orm.Dict({'max_epochs': 30, 'patience': 30})
    for key, value in JobRequest(partition='gpu', gpus=1, walltime_s=900).metadata_options().items():
        builder.train.metadata.options[key] = value

    checkpointed = lambda workdir: (workdir / 'outputs' / 'last.ckpt').is_file()  # noqa: E731
    watcher, cancelled = _cancel_when('aiida.calculations:ionfield.train', checkpointed)
    _, node = run_get_node(builder)
    watcher.join(timeout=5)

    assert cancelled, 'the job finished before it could be cancelled'
    assert node.is_finished_ok, node.exit_message
    first, second = sorted((n for n in node.called if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
    assert first.get_job_id() == cancelled['job_id']
    assert first.exit_status == 400 and 'killed' in first.exit_message
    assert second.inputs.parent_folder.uuid == first.outputs.remote_folder.uuid  # resumed, not restarted
    assert second.is_finished_ok and 'model' in node.outputs
    assert_nothing_lost(before)


def test_md_job_out_of_walltime_keeps_its_frames_and_continues(slurm_codes, finished_work):
    """A 1-minute SLURM limit on a run that needs several: SLURM kills it, the frames and checkpoint stay."""
    before = ledger()
    # cold and strongly damped, so the test model (a few epochs on synthetic frames) stays stable for minutes
    settings = {
        'steps': 100000,
        'temperature_K': 20,
        'friction_per_fs': 0.05,
        'timestep_fs': 0.5,
        'log_every': 20,
        'trajectory_every': 20,
        'checkpoint_every': 20,
    }
    inputs = {
        'code': slurm_codes['ionfield-md'],
        'structure': orm.StructureData(ase=alpha_li3n().repeat((3, 3, 3))),
        'model': finished_work['model'],
        'settings': orm.Dict(settings),
        'metadata': {'options': JobRequest(partition='debug', walltime_s=60).metadata_options()},
    }
    results, node = run_get_node(MDCalculation, **inputs)
    assert node.exit_status == 500, f'[{node.exit_status}] {node.exit_message}'
    assert 'walltime' in node.exit_message and 'parent_folder' in node.exit_message
    stderr = node.outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    assert 'DUE TO TIME LIMIT' in stderr  # SLURM's own word for it
    steps = results['trajectory'].read().steps
    assert steps[-1] >= 20 and 'state' in results
    reached = int(steps[-1])

    more = {
        **inputs,
        'settings': orm.Dict({**settings, 'steps': reached + 40}),
        'parent_folder': node.outputs.remote_folder,
    }
    more['metadata'] = {'options': JobRequest(partition='debug', walltime_s=600).metadata_options()}
    results, node = run_get_node(MDCalculation, **more)
    assert node.is_finished_ok, node.exit_message
    assert int(results['trajectory'].read().steps[-1]) == reached + 40
    assert_nothing_lost(before)
