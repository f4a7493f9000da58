"""``ClusterPolicy``: a job request against a SLURM cluster's accounting, refused where sbatch would refuse it."""

from __future__ import annotations

import pytest

from ionfield.plugins.job_options import JobOptionsError, JobRequest
from ionfield.plugins.slurm_policy import SECTION, ClusterPolicy

# what POLICY_COMMAND printed on the local SLURM with accounting (setup_profiles/slurm/local-slurm.sh, SLURM_DB)
ENFORCED = f"""AccountingStorageEnforce = associations,limits,qos
ClusterName             = ionfield-local
{SECTION}
ionfield-local|ionfield||normal,short
ionfield-local|root||normal
other-cluster|elsewhere||normal
{SECTION}
normal|
short|00:30:00
long|2-12:00:00
"""


@pytest.fixture
def policy():
    return ClusterPolicy.parse(ENFORCED)


def test_the_command_output_is_read(policy):
    assert policy.cluster == 'ionfield-local'
    assert policy.enforce == {'associations', 'limits', 'qos'}
    assert [a.account for a in policy.associations] == ['ionfield', 'root']  # other clusters' lines dropped
    assert policy.associations[0].qos == ('normal', 'short')
    assert policy.max_walltime_s == {'short': 1800, 'long': 216000}


@pytest.mark.parametrize(
    'request_',
    [
        JobRequest(),
        JobRequest(account='ionfield', qos='short', walltime_s=1800, partition='gpu'),
        JobRequest(account='root', qos='normal', walltime_s=10**6),
        JobRequest(qos='short'),
    ],
)
def test_what_the_cluster_allows_passes(policy, request_):
    policy.check(request_)


@pytest.mark.parametrize(
    ('request_', 'words'),
    [
        (
            JobRequest(account='nosuch'),
            r'account `nosuch` is not one of yours on cluster `ionfield-local` \(yours: ionfield, root\)',
        ),
        (JobRequest(account='elsewhere'), 'not one of yours'),
        (
            JobRequest(account='root', qos='short'),
            r'QOS `short` is not allowed for account `root`.*\(allowed: normal\)',
        ),
        (JobRequest(qos='nosuch'), r'QOS `nosuch` is not allowed for your accounts.*\(allowed: normal, short\)'),
        (
            JobRequest(account='ionfield', qos='short', walltime_s=3600),
            'walltime 3600 s is over the 1800 s that QOS `short`',
        ),
    ],
)
def test_what_sbatch_would_refuse_is_refused_first(policy, request_, words):
    with pytest.raises(JobOptionsError, match=words):
        policy.check(request_)


def test_partition_restricted_association():
    policy = ClusterPolicy.parse(
        f'AccountingStorageEnforce = associations\nClusterName = c\n{SECTION}\nc|proj|gpu|normal\n{SECTION}\n'
    )
    policy.check(JobRequest(account='proj', partition='gpu', qos='whatever'))  # QOS not enforced here
    with pytest.raises(JobOptionsError, match='may not submit to partition `debug`'):
        policy.check(JobRequest(account='proj', partition='debug'))


def test_no_association_at_all_is_said_plainly():
    policy = ClusterPolicy.parse(f'AccountingStorageEnforce = associations\nClusterName = c\n{SECTION}\n{SECTION}\n')
    with pytest.raises(JobOptionsError, match='no association on cluster `c`'):
        policy.check(JobRequest(account='proj'))


def test_without_enforcement_nothing_is_refused():
    policy = ClusterPolicy.parse(f'AccountingStorageEnforce = none\nClusterName = c\n{SECTION}\n{SECTION}\n')
    assert policy.enforce == frozenset()
    policy.check(JobRequest(account='anything', qos='anything', walltime_s=10**7))


def test_other_output_is_not_taken_for_a_policy():
    with pytest.raises(ValueError, match='not the output'):
        ClusterPolicy.parse('sacctmgr: error: You are not running a supported accounting_storage plugin')
