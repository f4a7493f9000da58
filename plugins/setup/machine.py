"""``ionfield setup laptop|server``: the ordered, idempotent steps that stand a profile up.

Each step reuses what exists and creates what is missing, so running the set-up again finishes a
set-up that was interrupted. Everything that can be checked before a change (QE present, services
reachable) is checked first, so a refused set-up changes nothing.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
from collections.abc import Callable

from .localhost import ensure_localhost_computer, ensure_qe_codes, ensure_runner_codes, find_qe_executables
from .profiles import (
    PostgresSettings,
    RabbitmqSettings,
    SetupError,
    ensure_caching,
    ensure_daemon_options,
    ensure_laptop_profile,
    ensure_server_profile,
)
from .pseudos import DEFAULT_ELEMENTS, PseudoGenerationError, install_pslibrary_family

__all__ = ('SetupOptions', 'setup_machine', 'SSSP_FAMILY_LABEL')

SSSP_FAMILY_LABEL = 'SSSP/1.3/PBE/efficiency'
LAPTOP, SERVER = 'laptop', 'server'


@dataclasses.dataclass(frozen=True)
class SetupOptions:
    kind: str
    profile: str
    email: str = 'ionfield@localhost'
    computer: str = 'localhost'
    pseudo_family: str = 'pslibrary'
    without_qe: bool = False
    workers: int = 1
    start_daemon: bool = True
    set_default: bool = False
    postgres: PostgresSettings = PostgresSettings()
    rabbitmq: RabbitmqSettings = RabbitmqSettings()


def _say(echo, step: str, created: bool, detail: str) -> None:
    echo(f'{step:<18} {"created" if created else "exists "}  {detail}')


def setup_machine(options: SetupOptions, echo: Callable[[str], None] = print) -> dict:
    """Run every step for ``options``; return the settings stored in the profile."""
    from aiida import load_profile
    from aiida.manage.configuration import get_config

    if options.kind not in (LAPTOP, SERVER):
        raise SetupError(f'unknown machine kind `{options.kind}`: choose `laptop` or `server`')
    executables = {} if options.without_qe else find_qe_executables()
    _refuse_unknown_family_for_new_profile(options)

    if options.kind == LAPTOP:
        profile, created = ensure_laptop_profile(options.profile, options.email, options.set_default)
    else:
        profile, created = ensure_server_profile(
            options.profile, options.email, options.postgres, options.rabbitmq, set_default=options.set_default
        )
    _say(echo, 'profile', created, f'{profile.name}: {profile.storage_backend} + {profile.process_control_backend}')
    load_profile(profile.name, allow_switch=True)
    config_dir = pathlib.Path(get_config().dirpath)

    computer, created = ensure_localhost_computer(options.computer, config_dir / 'scratch' / profile.name)
    _say(echo, 'computer', created, f'{computer.label} ({computer.get_default_mpiprocs_per_machine()} MPI ranks)')

    codes = {}
    for label, (code, created) in ensure_runner_codes(computer).items():
        _say(echo, f'code {label}', created, f'{code.full_label} -> {code.filepath_executable}')
        codes[label] = code.full_label
    if not options.without_qe:
        for label, (code, created) in ensure_qe_codes(computer, executables).items():
            _say(echo, f'code {label}', created, f'{code.full_label} -> {code.filepath_executable}')
            codes[label] = code.full_label
        family_label = _ensure_pseudo_family(options.pseudo_family, config_dir, profile.name, echo)
    else:
        family_label = None
        echo('QE engine          skipped (--without-qe)')

    from .settings import update_settings

    settings = update_settings(
        kind=options.kind,
        computer=computer.label,
        codes=codes,
        pseudo_family=family_label,
        without_qe=options.without_qe,
    )
    added = ensure_caching(profile.name)
    echo(f'{"caching":<18} {"enabled" if added else "exists "}  pw.x and ph.x labels are reused when identical')
    for name, value in ensure_daemon_options(profile.name).items():
        echo(f'{"daemon option":<18} set      {name} = {value}')

    if options.start_daemon:
        _ensure_daemon(profile, options.workers, echo)
    return settings


def _refuse_unknown_family_for_new_profile(options: SetupOptions) -> None:
    """A new profile holds no family yet, so only the generated or SSSP families can be asked for."""
    from aiida.manage.configuration import get_config

    if options.without_qe or options.pseudo_family in ('pslibrary', 'sssp'):
        return
    if options.profile not in get_config(create=True).profile_names:
        raise SetupError(
            f'the pseudo family `{options.pseudo_family}` is not installed in the new profile `{options.profile}`. '
            'Use `--pseudo-family pslibrary` (generated offline) or `--pseudo-family sssp` (aiida-pseudo, needs '
            'the internet), or install your family into an existing profile first.'
        )


def _ensure_pseudo_family(choice: str, config_dir: pathlib.Path, profile_name: str, echo) -> str:
    from aiida import orm

    if choice == 'pslibrary':
        directory = config_dir / 'pseudos' / 'pslibrary-1.0.0-PBE-PAW'
        try:
            family, created = install_pslibrary_family(directory)
        except PseudoGenerationError as exception:
            raise SetupError(str(exception)) from exception
        _say(echo, 'pseudo family', created, f'{family.label} ({", ".join(sorted(family.elements))})')
        return family.label
    label = SSSP_FAMILY_LABEL if choice == 'sssp' else choice
    if not orm.QueryBuilder().append(orm.Group, filters={'label': label}).count():
        if choice != 'sssp':
            raise SetupError(
                f'the pseudo family `{label}` is not installed in `{profile_name}`. Install it first (e.g. '
                '`aiida-pseudo install sssp`) or use the generated one: `--pseudo-family pslibrary`.'
            )
        echo(f'{"pseudo family":<18} installing {label} with aiida-pseudo (needs the internet)')
        result = subprocess.run(
            ['aiida-pseudo', '-p', profile_name, 'install', 'sssp', '-x', 'PBE', '-p', 'efficiency', '-v', '1.3'],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SetupError(
                f'`aiida-pseudo install sssp` failed (no internet?): {result.stderr.strip()[-500:]}. '
                'Use the generated family instead: `--pseudo-family pslibrary`.'
            )
    family = orm.QueryBuilder().append(orm.Group, filters={'label': label}).one()[0]
    missing = sorted(set(DEFAULT_ELEMENTS) - set(getattr(family, 'elements', [])))
    detail = f'{label}' + (f' (lacks {", ".join(missing)})' if missing else '')
    _say(echo, 'pseudo family', False, detail)
    return label


def _ensure_daemon(profile, workers: int, echo) -> None:
    from aiida.common.exceptions import ConfigurationError
    from aiida.engine.daemon.client import DaemonClient, DaemonException

    client = DaemonClient(profile)
    if client.is_daemon_running:
        echo(f'{"daemon":<18} running  (left as it is)')
        return
    try:
        client.start_daemon(number_workers=workers)
    except (DaemonException, ConfigurationError) as exception:
        raise SetupError(
            f'the daemon of `{profile.name}` failed to start: {exception}. Everything else is set up; activate the '
            f'virtual environment that has `verdi` and run `verdi -p {profile.name} daemon start {workers}`.'
        ) from exception
    echo(f'{"daemon":<18} started  {workers} worker(s)')
