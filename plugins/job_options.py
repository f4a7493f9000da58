"""What a job asks of a cluster scheduler (partition, account, QOS, walltime, GPUs), as ``metadata.options``.

One place that turns the request a cluster user thinks in into AiiDA's ``metadata.options``, so the
CLI, the protocols and the docs agree. GPUs have no field in AiiDA's options: on SLURM they are a
``#SBATCH --gres=gpu:N`` line in ``custom_scheduler_commands``; other schedulers spell them differently,
so a GPU request for one is refused rather than silently dropped.
"""

from __future__ import annotations

import dataclasses

__all__ = ('JobOptionsError', 'JobRequest')


class JobOptionsError(ValueError):
    """A scheduler request that cannot be turned into ``metadata.options``."""


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """A job's scheduler request; ``None`` leaves the computer's or the protocol's default."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    walltime_s: int | None = None
    gpus: int | None = None
    mpiprocs: int | None = None

    def __post_init__(self):
        for name in ('partition', 'account', 'qos'):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or any(c.isspace() for c in value)):
                raise JobOptionsError(f'{name} must be a name without spaces, not {value!r}')
        for name, low in (('walltime_s', 60), ('gpus', 0), ('mpiprocs', 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise JobOptionsError(f'{name} must be an integer >= {low}, not {value!r}')

    def metadata_options(self, scheduler: str = 'core.slurm') -> dict:
        """The ``metadata.options`` of this request for a computer with ``scheduler``."""
        options: dict = {}
        if self.partition is not None:
            options['queue_name'] = self.partition
        if self.account is not None:
            options['account'] = self.account
        if self.qos is not None:
            options['qos'] = self.qos
        if self.walltime_s is not None:
            options['max_wallclock_seconds'] = self.walltime_s
        if self.mpiprocs is not None:
            options['resources'] = {'num_machines': 1, 'num_mpiprocs_per_machine': self.mpiprocs}
        if self.gpus:
            if scheduler != 'core.slurm':
                raise JobOptionsError(
                    f'GPUs per node are a SLURM request (--gres=gpu:N); for a `{scheduler}` computer put your '
                    "scheduler's GPU line in metadata.options.custom_scheduler_commands"
                )
            options['custom_scheduler_commands'] = f'#SBATCH --gres=gpu:{self.gpus}'
        return options
