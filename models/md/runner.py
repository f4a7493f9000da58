"""``ionfield-md``: one field-MD run on any machine, driven by files, no AiiDA needed.

Inputs: a structure file (extxyz, CIF, POSCAR: anything ASE reads), one or more model files
(``--model``, repeatable: the first drives the dynamics, all of them form the committee that is
evaluated every ``monitor_every`` steps), ``settings.json`` (:class:`~.settings.MDSettings`) and
optionally ``--restart state.npz`` of an earlier run in the same folder. ``backend: torchsim`` in the
settings runs it with TorchSim (:mod:`.torchsim_engine`); ``--batch runs.json`` (a list of
``{"workdir", "structure", "settings", "restart"}``) runs many in one TorchSim batch, each writing its own
files and ``result.json`` in its workdir.

Writes the trajectory, ``thermo.csv``, ``uncertainty.csv`` (committee), ``state.npz`` and
``result.json`` (status, message, :class:`~.engine.MDResult` fields). The status is the stop reason
or ``input_error``; each has its own exit code, so a scheduler or ``MDCalculation`` can tell them
apart without reading files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ionfield.models.potential.devices import default_device, limit_threads

from .settings import MDInputError, MDSettings
from .stops import CLOSE_CONTACT, COMPLETED, FAILED, NOT_FINITE, TEMPERATURE_RUNAWAY, UNCERTAINTY

RESULT_FILE = 'result.json'
SETTINGS_FILE = 'settings.json'
STRUCTURE_FILE = 'structure.xyz'
STATUS_EXIT = {
    COMPLETED: 0,
    'input_error': 2,
    FAILED: 5,
    UNCERTAINTY: 10,
    CLOSE_CONTACT: 11,
    TEMPERATURE_RUNAWAY: 12,
    NOT_FINITE: 13,
}


def _write_result(workdir: Path, status: str, message: str = '', **extra) -> int:
    (workdir / RESULT_FILE).write_text(json.dumps({'status': status, 'message': message, **extra}, indent=1))
    return STATUS_EXIT[status]


def load_models(paths: list[Path], device: str, structure_species: set[str]):
    """Driver calculator and the other committee members; refuses species a model lacks."""
    from ionfield.models.potential.calculator import load_calculator, model_type_names

    calculators = []
    for path in paths:
        calc = load_calculator(path, device=device, has_bec=True)
        unknown = sorted(structure_species - set(model_type_names(calc)))
        if unknown:
            raise MDInputError(
                f'{path.name}: the model does not know species {unknown} (it has {model_type_names(calc)})'
            )
        calculators.append(calc)
    return calculators[0], calculators[1:]


def run_md(
    workdir: Path,
    structure_path: Path,
    model_paths: list[Path],
    settings_path: Path,
    restart: Path | None = None,
    device: str = 'cpu',
) -> int:
    from ase.io import read

    from ionfield.models.potential.calculator import ModelFileError

    from .engine import run_field_md

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        settings = MDSettings.from_dict(json.loads(settings_path.read_text()))
        if not model_paths:
            raise MDInputError('no model given (--model FILE)')
        try:
            atoms = read(structure_path)
        except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for unreadable files
            raise MDInputError(f'{structure_path}: cannot read the structure ({exc})') from exc
        if settings.backend == 'torchsim':
            from .torchsim_engine import BatchRun

            (result,) = run_batch([BatchRun(atoms, settings, workdir, restart)], model_paths, device)
        else:
            driver, committee = load_models(model_paths, device, set(atoms.get_chemical_symbols()))
            result = run_field_md(atoms, driver, settings, workdir, committee=committee, restart=restart)
    except (MDInputError, ModelFileError, OSError, json.JSONDecodeError) as exc:
        return _write_result(workdir, 'input_error', str(exc))
    return _write_md_result(workdir, result)


def _write_md_result(workdir: Path, result) -> int:
    details = {key: value for key, value in result.to_dict().items() if key != 'message'}
    return _write_result(workdir, result.stop_reason, result.message, **details)


def run_batch(runs, model_paths: list[Path], device: str):
    """Run ``runs`` (:class:`~.torchsim_engine.BatchRun`) as one TorchSim batch; refuses species a model lacks."""
    from ionfield.models.potential.calculator import model_type_names

    from .torchsim_engine import BatchedFieldMD, load_batch_model, torchsim_problem

    problem = torchsim_problem()
    if problem:
        raise MDInputError(problem)
    if not model_paths:
        raise MDInputError('no model given (--model FILE)')
    species = set().union(*(run.atoms.get_chemical_symbols() for run in runs))
    models = []
    for index, path in enumerate(model_paths):
        model = load_batch_model(path, device, field=index == 0)
        unknown = sorted(species - set(model_type_names(model)))
        if unknown:
            raise MDInputError(
                f'{path.name}: the model does not know species {unknown} (it has {model_type_names(model)})'
            )
        models.append(model)
    return BatchedFieldMD(runs, models[0], models[1:], device).run()


def run_md_batch(batch_path: Path, model_paths: list[Path], device: str = 'cpu') -> int:
    """``--batch``: every run of ``batch_path`` in one TorchSim batch; 0 when each wrote its ``result.json``."""
    from ase.io import read

    from ionfield.models.potential.calculator import ModelFileError

    from .torchsim_engine import BatchRun

    runs, workdirs = [], []
    try:
        entries = json.loads(batch_path.read_text())
        if not isinstance(entries, list) or not entries:
            raise MDInputError(f'{batch_path}: a batch is a non-empty JSON list of runs')
        for entry in entries:
            workdir = Path(entry['workdir']).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            workdirs.append(workdir)
            settings = MDSettings.from_dict(entry['settings'])
            try:
                atoms = read(entry['structure'])
            except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for unreadable files
                raise MDInputError(f'{entry["structure"]}: cannot read the structure ({exc})') from exc
            restart = Path(entry['restart']) if entry.get('restart') else None
            runs.append(BatchRun(atoms, settings, workdir, restart))
        results = run_batch(runs, model_paths, device)
    except (MDInputError, ModelFileError, OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        message = f'{type(exc).__name__}: {exc}' if isinstance(exc, (KeyError, TypeError)) else str(exc)
        for workdir in workdirs:
            _write_result(workdir, 'input_error', message)
        print(f'ionfield-md --batch: {message}', file=sys.stderr)
        return STATUS_EXIT['input_error']
    for workdir, result in zip(workdirs, results, strict=True):
        _write_md_result(workdir, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='ionfield-md', description=__doc__.split('\n\n')[0])
    parser.add_argument('--structure', type=Path, default=Path(STRUCTURE_FILE))
    parser.add_argument('--model', type=Path, action='append', default=[], help='model file (repeat for a committee)')
    parser.add_argument('--settings', type=Path, default=Path(SETTINGS_FILE))
    parser.add_argument('--restart', type=Path, help='state.npz of an earlier run in this folder')
    parser.add_argument('--workdir', type=Path, default=Path('.'))
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--batch', type=Path, help='runs.json: many runs in one TorchSim batch (see above)')
    args = parser.parse_args(argv)
    limit_threads()
    if args.batch is not None:
        return run_md_batch(args.batch, args.model, args.device or default_device())
    return run_md(
        args.workdir, args.structure, args.model, args.settings, args.restart, args.device or default_device()
    )


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
