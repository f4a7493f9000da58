"""``ionfield-train``: one training run on any machine, driven by files, no AiiDA needed.

Inputs (in the working directory or given by path): a dataset ``.npz`` (``Dataset.save``), a
``settings.json`` (:class:`~ionfield.models.train.settings.TrainingSettings`, only the keys that are set),
optionally a parent ``.nequip.zip`` to warm-start from, or a ``last.ckpt`` to resume an interrupted run.

A warm start inherits the parent's architecture (:data:`~ionfield.models.train.settings.ARCHITECTURE`) from
the parent's own record: ``--parent-settings`` (its settings, or the ``result.json`` of its run), by default
the ``result.json`` beside the parent file. A settings file that asks for another architecture is refused.

It writes ``config.yaml`` and the splits, runs ``nequip-train`` (one torch thread unless
``OMP_NUM_THREADS`` says otherwise), packages the best checkpoint into ``model.nequip.zip``,
optionally compiles it (``--compile``: AOTInductor, target ``ase_bec``), evaluates it on the
test split and writes ``result.json``: status, message, test metrics, epochs, model metadata and the
settings that were used (``settings``).

Statuses (and exit codes): ``ok`` (0), ``input_error`` (2), ``nan_loss`` (3),
``out_of_memory`` (4), ``failed`` (5). A run killed by the scheduler writes no result; its
``outputs/last.ckpt`` is what ``--resume`` continues from.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ionfield.models.potential.devices import default_device, limit_threads

RESULT_FILE = 'result.json'
MODEL_FILE = 'model.nequip.zip'
COMPILED_FILE = 'model.nequip.pt2'
LOG_FILE = 'train.log'
STATUS_EXIT = {'ok': 0, 'input_error': 2, 'nan_loss': 3, 'out_of_memory': 4, 'failed': 5}
_OOM = re.compile(r'out of memory|OutOfMemoryError|can\'t allocate memory', re.IGNORECASE)
_NAN = re.compile(r'is not finite|loss is nan|nan loss', re.IGNORECASE)


def classify_failure(log_text: str) -> str:
    """``out_of_memory``, ``nan_loss`` or ``failed`` from a training log."""
    if _OOM.search(log_text):
        return 'out_of_memory'
    if _NAN.search(log_text):
        return 'nan_loss'
    return 'failed'


def _executable(name: str) -> str:
    """``name`` from this interpreter's environment first (a venv need not be on PATH)."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else name


def _run(command: list[str], log, env: dict) -> int:
    command = [_executable(command[0])] + command[1:]
    log.write(f'$ {" ".join(command)}\n')
    log.flush()
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def _write_result(workdir: Path, status: str, message: str = '', **extra) -> int:
    result = {'status': status, 'message': message, **extra}
    (workdir / RESULT_FILE).write_text(json.dumps(result, indent=1))
    return STATUS_EXIT[status]


def last_epoch(workdir: Path) -> int | None:
    """Last epoch recorded in the CSV log (None before the first validation)."""
    from .log import read_training_log

    rows = read_training_log(workdir)
    return max((row['epoch'] for row in rows), default=None)


def first_nan_epoch(workdir: Path) -> int | None:
    """First epoch whose training or validation loss (``weighted_sum``) is not finite in the CSV log, else None.

    ``nequip-train`` can end with exit status 0 after a NaN loss: lightning's ``EarlyStopping(check_finite=True)``
    stops the run without a line in the log that :data:`_NAN` would find, and a ``best.ckpt`` of NaN weights is
    written. The CSV log records the NaN either way.
    """
    from .log import read_training_log

    for row in read_training_log(workdir):
        losses = [value for key, value in row.items() if key.endswith('/weighted_sum')]
        if any(value != value for value in losses):  # NaN (read_training_log turns inf into NaN too)
            return row['epoch']
    return None


def check_device(device: str) -> None:
    """Refuse a GPU that torch does not see before anything is written (not a crash halfway through)."""
    from .settings import TrainingInputError

    if device.startswith('cuda'):
        import torch

        if not torch.cuda.is_available():
            raise TrainingInputError(
                f'device {device!r} was asked for, but torch {torch.__version__} sees no GPU here '
                '(a CPU build of torch, or no GPU on this node); use --device cpu'
            )


def read_parent_settings(parent: Path, record: Path | None) -> dict:
    """The settings the parent model was trained with: ``record`` (settings or a run's ``result.json``), else the
    ``result.json`` beside ``parent``."""
    from .settings import TrainingInputError

    path = record if record is not None else parent.parent / RESULT_FILE
    if not path.is_file():
        raise TrainingInputError(
            f"a warm start keeps the parent model's architecture, but its training settings are unknown: no {path}; "
            "give --parent-settings (the parent run's result.json or settings)"
        )
    content = json.loads(path.read_text())
    settings = content.get('settings') if 'status' in content else content
    if settings is None:
        raise TrainingInputError(f'{path} records no settings (an older ionfield-train?); give --parent-settings')
    return settings


def run_training(
    workdir: Path,
    dataset_path: Path,
    settings_path: Path,
    parent: Path | None = None,
    resume: Path | None = None,
    compile_model: bool = False,
    device: str = 'cpu',
    parent_settings: Path | None = None,
) -> int:
    from ionfield.models.data.dataset import Dataset
    from ionfield.models.potential.calculator import ModelFileError, load_calculator, model_type_names
    from ionfield.models.potential.evaluation import error_metrics, predict

    from .config import BEST_CHECKPOINT, CONFIG_NAME, SPLIT_FILES, write_training_inputs
    from .settings import TrainingInputError, TrainingSettings, warm_start_settings

    workdir = workdir.resolve()
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    started = time.monotonic()
    try:
        check_device(device)
        requested = json.loads(settings_path.read_text())
        dataset = Dataset.load(dataset_path)
        parent_types = None
        if parent is None:
            settings = TrainingSettings.from_dict(requested)
        else:
            settings = warm_start_settings(requested, read_parent_settings(parent, parent_settings))
            parent_types = model_type_names(load_calculator(parent, has_bec=settings.bec))
        write_training_inputs(
            dataset, settings, workdir, parent_types, str(parent.resolve()) if parent else None, device
        )
    except (TrainingInputError, ModelFileError, ValueError, OSError) as exc:
        return _write_result(workdir, 'input_error', str(exc))

    with open(workdir / LOG_FILE, 'a') as log:
        command = ['nequip-train', '-cp', str(workdir), '-cn', CONFIG_NAME]
        if resume is not None:
            command.append(f'++ckpt_path={resume.resolve()}')
        rc = _run(command, log, env)
    log_text = (workdir / LOG_FILE).read_text(errors='replace')
    best = workdir / BEST_CHECKPOINT
    if rc != 0 or not best.is_file():
        status = classify_failure(log_text)
        return _write_result(
            workdir, status, f'nequip-train exited with {rc}; see {LOG_FILE}', epochs=last_epoch(workdir)
        )
    nan_epoch = first_nan_epoch(workdir)
    if _NAN.search(log_text) or nan_epoch is not None:
        where = '' if nan_epoch is None else f' at epoch {nan_epoch}'
        return _write_result(
            workdir, 'nan_loss', f'the loss became NaN{where}; training stopped', epochs=last_epoch(workdir)
        )

    with open(workdir / LOG_FILE, 'a') as log:
        rc = _run(['nequip-package', 'build', str(best), str(workdir / MODEL_FILE)], log, env)
        if rc != 0:
            return _write_result(workdir, 'failed', f'nequip-package exited with {rc}; see {LOG_FILE}')
        if compile_model:
            target = 'ase_bec' if settings.bec else 'ase'
            rc = _run(
                [
                    'nequip-compile',
                    str(workdir / MODEL_FILE),
                    str(workdir / COMPILED_FILE),
                    '--mode',
                    'aotinductor',
                    '--device',
                    device,
                    '--target',
                    target,
                ],
                log,
                env,
            )
            if rc != 0:
                return _write_result(workdir, 'failed', f'nequip-compile exited with {rc}; see {LOG_FILE}')

    calc = load_calculator(workdir / MODEL_FILE, device=device, has_bec=settings.bec)
    test = Dataset.from_extxyz(workdir / SPLIT_FILES['test'])
    metrics = error_metrics(test, predict(calc, test))
    sizes = {name: len(Dataset.from_extxyz(workdir / fname)) for name, fname in SPLIT_FILES.items()}
    return _write_result(
        workdir,
        'ok',
        metrics=metrics,
        epochs=last_epoch(workdir),
        split_sizes=sizes,
        type_names=sorted(dataset.species_counts()),
        r_max=settings.r_max,
        has_bec=settings.bec,
        settings=settings.to_dict(),
        device=device,
        wall_time_s=round(time.monotonic() - started, 1),
        compiled=compile_model,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='ionfield-train', description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', type=Path, default=Path('dataset.npz'))
    parser.add_argument('--settings', type=Path, default=Path('settings.json'))
    parser.add_argument('--workdir', type=Path, default=Path('.'))
    parser.add_argument('--parent', type=Path, help='packaged model (.nequip.zip) to warm-start from')
    parser.add_argument(
        '--parent-settings', type=Path, help="the parent's settings or its run's result.json (default: beside it)"
    )
    parser.add_argument('--resume', type=Path, help='checkpoint (last.ckpt) of an interrupted run')
    parser.add_argument('--compile', action='store_true', help='also AOTInductor-compile the model (target ase_bec)')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    args = parser.parse_args(argv)
    limit_threads()
    device = args.device or default_device()
    return run_training(
        args.workdir, args.dataset, args.settings, args.parent, args.resume, args.compile, device, args.parent_settings
    )


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
