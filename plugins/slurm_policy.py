"""What a SLURM cluster with enforced accounting lets this user ask for, checked before anything is submitted.

Where slurmctld enforces accounting, ``sbatch`` refuses an account the user has no association with
(aiida-core then ends the CalcJob with exit code 131, after the workchain around it started), and
refuses an unknown QOS or a walltime over the QOS's limit with an error that aiida-core treats as a
transport failure: it retries five times with back-off and then pauses the process. Asking
``sacctmgr`` first turns all three into a usage error of the command, before any node is stored.
The parsing and the rules are plain Python (:class:`ClusterPolicy`), tested without a cluster.
"""

from __future__ import annotations

import dataclasses
import re

from .job_options import JobOptionsError, JobRequest

__all__ = ('POLICY_COMMAND', 'Association', 'ClusterPolicy', 'cluster_policy')

SECTION = '--ionfield--'
POLICY_COMMAND = (
    "scontrol show config | grep -E '^(ClusterName|AccountingStorageEnforce) '"
    f'; echo {SECTION}; sacctmgr -nP show assoc where user="$(id -un)" format=cluster,account,partition,qos'
    f'; echo {SECTION}; sacctmgr -nP show qos format=name,maxwall'
)
"""One shell command on the cluster: the config lines, the user's associations and the QOS limits."""

_WALLTIME = re.compile(r'^(?:(?P<days>\d+)-)?(?:(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>\d+)$')


@dataclasses.dataclass(frozen=True)
class Association:
    """One line of ``sacctmgr show assoc``: the user may charge ``account`` on ``partition`` ('' = all) with ``qos``."""

    cluster: str
    account: str
    partition: str
    qos: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ClusterPolicy:
    """The accounting rules of one cluster for the submitting user."""

    cluster: str
    enforce: frozenset[str]
    associations: tuple[Association, ...]
    max_walltime_s: dict[str, int]
    """Seconds a job of each QOS may run at most; a QOS without a limit is absent."""

    @classmethod
    def parse(cls, text: str) -> ClusterPolicy:
        """The policy from the output of :data:`POLICY_COMMAND`."""
        parts = text.split(SECTION)
        if len(parts) != 3:
            raise ValueError(f'not the output of the policy command: {text[:200]!r}')
        config = dict(
            (key.strip(), value.strip()) for key, _, value in (line.partition('=') for line in parts[0].splitlines())
        )
        enforce = config.get('AccountingStorageEnforce', 'none')
        associations = []
        for line in parts[1].split():
            cluster, account, partition, qos = (line.split('|') + ['', '', '', ''])[:4]
            associations.append(Association(cluster, account, partition, tuple(q for q in qos.split(',') if q)))
        limits = {}
        for line in parts[2].split():
            name, _, maxwall = line.partition('|')
            match = _WALLTIME.match(maxwall)
            if match:
                limits[name] = (
                    int(match['days'] or 0) * 86400
                    + int(match['hours'] or 0) * 3600
                    + int(match['minutes']) * 60
                    + int(match['seconds'])
                )
        return cls(
            cluster=config.get('ClusterName', ''),
            enforce=frozenset(word for word in enforce.split(',') if word and word != 'none'),
            associations=tuple(a for a in associations if a.cluster == config.get('ClusterName', a.cluster)),
            max_walltime_s=limits,
        )

    def check(self, request: JobRequest) -> None:
        """Raise :class:`JobOptionsError` for a request ``sbatch`` on this cluster would refuse."""
        if 'associations' not in self.enforce:
            return
        if not self.associations:
            raise JobOptionsError(f'you have no association on cluster `{self.cluster}`: ask its admins for an account')
        rows = self.associations
        if request.account is not None:
            rows = tuple(a for a in rows if a.account == request.account)
            if not rows:
                accounts = ', '.join(sorted({a.account for a in self.associations}))
                raise JobOptionsError(
                    f'account `{request.account}` is not one of yours on cluster `{self.cluster}` (yours: {accounts})'
                )
            if request.partition is not None and not any(a.partition in ('', request.partition) for a in rows):
                raise JobOptionsError(f'account `{request.account}` may not submit to partition `{request.partition}`')
        if request.qos is None or 'qos' not in self.enforce:
            return
        allowed = sorted({q for a in rows for q in a.qos})
        if allowed and request.qos not in allowed:
            whose = f'account `{request.account}`' if request.account else 'your accounts'
            raise JobOptionsError(
                f'QOS `{request.qos}` is not allowed for {whose} on cluster `{self.cluster}` '
                f'(allowed: {", ".join(allowed)})'
            )
        limit = self.max_walltime_s.get(request.qos)
        if 'limits' in self.enforce and limit and request.walltime_s and request.walltime_s > limit:
            raise JobOptionsError(
                f'walltime {request.walltime_s} s is over the {limit} s that QOS `{request.qos}` allows'
            )


def cluster_policy(computer) -> ClusterPolicy | None:
    """The policy of ``computer``'s SLURM cluster, or ``None`` where it cannot be read (no accounting, no sacctmgr)."""
    try:
        with computer.get_transport() as transport:
            retval, stdout, _ = transport.exec_command_wait(POLICY_COMMAND)
        return ClusterPolicy.parse(stdout) if retval == 0 else None
    except Exception:  # noqa: BLE001 (a cluster we cannot ask is left to sbatch, as before)
        return None
