"""The cluster path for real: our CalcJobs through a single-node SLURM (``core.slurm``) with per-job requests.

The cluster is started by the ``local_slurm`` fixture (``setup_profiles/slurm/local-slurm.sh``) and
stopped afterwards. Each job's submit script must carry the partition, account, QOS, walltime and GPU
request, and the job must have gone through ``sbatch`` (a SLURM job id) and finished.
"""

from __future__ import annotations

import subprocess

import click
import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory

from ionfield.models.structures.reference import alpha_li3n, get_reference_structure
from ionfield.plugins.calculations.md import MDCalculation
from ionfield.plugins.cli.utils import job_metadata_options
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.job_options import JobRequest
from ionfield.workflows.label.workchain import LabelWorkChain
from ionfield.workflows.train.workchain import TrainWorkChain

from .conftest import requires_qe, slurm_has_accounting
from .models.synthetic import synthetic_dataset

pytestmark = pytest.mark.slow


def submit_script(node) -> str:
    return node.base.repository.get_object_content('_aiidasubmit.sh')


def assert_went_through_slurm(node, *lines: str) -> None:
    assert node.computer.scheduler_type == 'core.slurm'
    assert node.get_job_id() and node.get_job_id().isdigit(), 'no SLURM job id: the job did not go through sbatch'
    script = submit_script(node)
    for line in lines:
        assert line in script, f'{line!r} missing from the submit script:\n{script}'


@requires_qe
def test_qe_label_runs_through_slurm_with_partition_account_qos_walltime(slurm_codes, qe_engine):
    options = JobRequest(partition='debug', account='ionfield', qos='normal', walltime_s=900).metadata_options()
    builder = LabelWorkChain.get_builder_from_protocol(
        {'li3n': orm.StructureData(ase=get_reference_structure('alpha-Li3N'))},
        protocol='fast',
        bec=False,  # pw.x only: ph.x starts through the same mpirun line, at 100 s more of CI
        overrides={'pseudo_family': qe_engine['pseudo_family']},
        options=options,
        pw_code=slurm_codes['pw'],
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert [n.process_label for n in jobs] == ['PwCalculation']
    for job in jobs:
        assert job.is_finished_ok
        assert_went_through_slurm(
            job,
            '#SBATCH --partition=debug',
            '#SBATCH --account=ionfield',
            '#SBATCH --qos=normal',
            '#SBATCH --time=00:15:00',
            "'mpirun' '-np' '2'",
        )
    frame = node.outputs.dataset.get_dataset()[0]
    assert frame.has_forces and frame.has_stress and not frame.has_born_charges


def test_training_and_md_run_through_slurm_on_the_gpu_partition(slurm_codes):
    """One training job and one MD job, each asking for one GPU of the ``gpu`` partition (one job per GPU)."""
    options = JobRequest(partition='gpu', account='ionfield', gpus=1, walltime_s=600).metadata_options()
    builder = TrainWorkChain.get_builder()
    builder.train.code = slurm_codes['ionfield-train']
    builder.train.dataset = DatasetData(synthetic_dataset(12, bec_share=0.5)).store()
    builder.train.settings = orm.Dict({'max_epochs': 3, 'patience': 3})
    for key, value in options.items():
        builder.train.metadata.options[key] = value
    results, train = run_get_node(builder)
    assert train.is_finished_ok, train.exit_message
    (job,) = [n for n in train.called if isinstance(n, orm.CalcJobNode)]
    assert_went_through_slurm(job, '#SBATCH --partition=gpu', '#SBATCH --gres=gpu:1', '#SBATCH --time=00:10:00')

    md_settings = {'steps': 20, 'temperature_K': 500, 'field': [0.0, 0.0, 0.1], 'log_every': 5, 'trajectory_every': 5}
    md_results, md = run_get_node(
        MDCalculation,
        code=slurm_codes['ionfield-md'],
        structure=orm.StructureData(ase=alpha_li3n().repeat((2, 2, 2))),
        model=results['model'],
        settings=orm.Dict(md_settings),
        metadata={'options': options},
    )
    assert md.is_finished_ok, md.exit_message
    assert_went_through_slurm(md, '#SBATCH --partition=gpu', '#SBATCH --gres=gpu:1')
    steps = md_results['trajectory'].read().steps
    np.testing.assert_array_equal(steps, [0, 5, 10, 15, 20])


def test_accounts_and_qos_are_enforced_and_a_refused_request_stops_before_submission(slurm_codes, local_slurm):
    """With slurmdbd, sbatch refuses what the accounting forbids; the CLI's request check says so first.

    Without the check, aiida-core ends a CalcJob with an unknown account at exit code 131 and retries an
    unknown QOS five times before pausing the process.
    """
    if not slurm_has_accounting(local_slurm):
        pytest.skip('no accounting: slurmdbd or a MySQL/MariaDB server on 127.0.0.1 is missing')
    refused = {
        '--account=nosuch': 'Invalid account',
        '--qos=nosuch': 'Invalid qos',
        '--qos=short --time=60': 'QOSMaxWallDurationPerJobLimit',
    }
    for flags, words in refused.items():
        sbatch = subprocess.run(
            ['sbatch', *flags.split(), '--output=/dev/null', '--wrap', 'true'], capture_output=True, text=True
        )
        assert sbatch.returncode != 0 and words in sbatch.stderr, (flags, sbatch.stderr)

    code = slurm_codes['ionfield-md']
    allowed = job_metadata_options(code, 1800, partition='gpu', account='ionfield', qos='short', gpus=None)
    assert allowed == {'queue_name': 'gpu', 'account': 'ionfield', 'qos': 'short', 'max_wallclock_seconds': 1800}
    for request, words in [
        ({'account': 'nosuch'}, 'account `nosuch` is not one of yours on cluster `ionfield-local`'),
        ({'qos': 'nosuch'}, 'QOS `nosuch` is not allowed'),
        ({'qos': 'short', 'walltime': 3600}, 'over the 1800 s that QOS `short` allows'),
    ]:
        with pytest.raises(click.UsageError, match=words):
            job_metadata_options(code, **{'partition': None, 'account': None, 'qos': None, 'gpus': None, **request})

    bash = orm.InstalledCode(computer=code.computer, filepath_executable='/bin/bash', label='bash-accounting')
    add = CalculationFactory('core.arithmetic.add')
    builder = add.get_builder()
    builder.code = bash.store()
    builder.x, builder.y = orm.Int(1), orm.Int(2)
    builder.metadata.options.account = 'nosuch'
    _, node = run_get_node(builder)
    assert node.exit_status == add.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT.status  # 131, nothing ran
    assert node.get_job_id() is None
