"""Helpers shared by the subcommands: loading a profile or a runner code with a clear error, ``KEY=VALUE`` options."""

from __future__ import annotations

import click

PROFILE_OPTION = click.option(
    '-p',
    '--profile',
    'profile',
    default=None,
    metavar='NAME',
    help='AiiDA profile to use (default: the default profile).',
)


def load_profile_or_fail(name: str | None):
    """Load profile ``name`` (or the default one) or stop with a message that says how to create it."""
    from aiida import load_profile
    from aiida.common.exceptions import ConfigurationError, MissingConfigurationError, ProfileConfigurationError

    try:
        return load_profile(name, allow_switch=True)
    except (MissingConfigurationError, ProfileConfigurationError, ConfigurationError) as exception:
        raise click.ClickException(
            f'cannot load the AiiDA profile {name or "(default)"}: {exception}. '
            'Create one with `ionfield setup laptop`.'
        ) from exception


def parse_key_values(values: tuple[str, ...], param_hint: str) -> dict:
    """``KEY.SUB=VALUE`` pairs (VALUE read as YAML) -> a nested dict; a malformed pair is a usage error."""
    import yaml

    result: dict = {}
    for item in values:
        key, sep, raw = item.partition('=')
        if not sep or not key:
            raise click.BadParameter(f'`{item}` is not KEY=VALUE', param_hint=param_hint)
        target = result
        *parents, last = key.split('.')
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = yaml.safe_load(raw)
    return result


def validated_settings(
    settings_class,
    values: tuple[str, ...],
    base: dict | None = None,
    *,
    what: str,
    set_option: str = '--set',
    **options,
) -> dict:
    """``base``, then the ``KEY=VALUE`` pairs of ``set_option``, then the options that were given, as a dict
    validated by ``settings_class.from_dict``: a refused value is a usage error, so nothing is submitted.

    An option also given as a pair is a usage error; tuples (``nargs``/``multiple`` options) become lists.
    """
    settings = dict(base or {})
    pairs = parse_key_values(values, set_option)
    settings.update(pairs)
    for key, value in options.items():
        if value is None or value == ():
            continue
        if key in pairs:
            raise click.UsageError(f'`{key}` is given both by an option and by {set_option} {key}=...')
        settings[key] = list(value) if isinstance(value, tuple) else value
    try:
        return settings_class.from_dict(settings).to_dict()
    except (settings_class.input_error, TypeError) as exception:
        raise click.BadParameter(str(exception), param_hint=f'{what} settings') from exception


def load_runner_code(label: str | None, script: str, plugin: str):
    """The code running ``script``: ``label``, else the one ``ionfield setup`` recorded, else ``script@localhost``."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from .defaults import profile_settings

    label = label or (profile_settings().get('codes') or {}).get(script) or f'{script}@localhost'
    try:
        code = orm.load_code(label)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        raise click.ClickException(
            f'no code `{label}` ({exception}): run `ionfield setup laptop` or pass --code'
        ) from exception
    if code.default_calc_job_plugin not in (None, plugin):
        raise click.BadParameter(
            f'code `{label}` runs `{code.default_calc_job_plugin}`, not `{plugin}`', param_hint='--code'
        )
    return code


def job_options(function):
    """``--partition --account --qos --gpus``: a cluster job's request, read by :func:`job_metadata_options`."""
    options = [
        click.option('--partition', default=None, help='Scheduler partition (queue) of every job.'),
        click.option('--account', default=None, help='Account charged for every job.'),
        click.option('--qos', default=None, help='Quality of service of every job.'),
        click.option(
            '--gpus',
            default=None,
            type=click.IntRange(0),
            help='GPUs per job (SLURM: #SBATCH --gres=gpu:N); one MD or training job per GPU.',
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def job_metadata_options(code, walltime: int | None = None, **request) -> dict:
    """``metadata.options`` for jobs of ``code`` from the :func:`job_options` values; a bad request is a usage error.

    An account or QOS for a SLURM computer is checked against the cluster's accounting first
    (:mod:`ionfield.plugins.slurm_policy`), so a request ``sbatch`` would refuse stops here.
    """
    from ionfield.plugins.job_options import JobOptionsError, JobRequest
    from ionfield.plugins.slurm_policy import cluster_policy

    scheduler = code.computer.scheduler_type
    try:
        job = JobRequest(walltime_s=walltime, **request)
        options = job.metadata_options(scheduler)
        if scheduler == 'core.slurm' and (job.account or job.qos):
            policy = cluster_policy(code.computer)
            if policy is not None:
                policy.check(job)
    except JobOptionsError as exception:
        raise click.UsageError(str(exception)) from exception
    return options
