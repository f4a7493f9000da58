"""``JobRequest``: a cluster user's request as AiiDA ``metadata.options``, refused when it cannot be honoured."""

from __future__ import annotations

import pytest

from ionfield.plugins.job_options import JobOptionsError, JobRequest


def test_full_request_becomes_slurm_options():
    options = JobRequest(partition='gpu', account='proj', qos='high', walltime_s=7200, gpus=2, mpiprocs=1)
    assert options.metadata_options() == {
        'queue_name': 'gpu',
        'account': 'proj',
        'qos': 'high',
        'max_wallclock_seconds': 7200,
        'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
        'custom_scheduler_commands': '#SBATCH --gres=gpu:2',
    }


def test_nothing_asked_changes_nothing():
    assert JobRequest().metadata_options('core.direct') == {}
    assert JobRequest(gpus=0).metadata_options('core.pbspro') == {}


def test_gpus_on_another_scheduler_are_refused_not_dropped():
    with pytest.raises(JobOptionsError, match='SLURM request'):
        JobRequest(gpus=1).metadata_options('core.pbspro')


@pytest.mark.parametrize(
    ('field', 'value', 'words'),
    [
        ('partition', 'gpu small', 'without spaces'),
        ('account', '', 'without spaces'),
        ('walltime_s', 30, '>= 60'),
        ('walltime_s', 3600.5, 'integer'),
        ('gpus', -1, '>= 0'),
        ('mpiprocs', True, 'integer'),
    ],
)
def test_bad_values_are_refused(field, value, words):
    with pytest.raises(JobOptionsError, match=words):
        JobRequest(**{field: value})
