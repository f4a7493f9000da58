"""Regenerate the parser fixtures (``fixtures/<calculation>/<case>/``) by running the real console scripts.

Usage, from the repository root, in the project's virtual environment (about 3 minutes on 2 CPU cores)::

    OMP_NUM_THREADS=1 python tests/plugins/parsers/make_fixtures.py [CASE ...]

CASE is ``train/ok``, ``md/completed``, ...; without one, every case is made again. The MD cases run on the
model that ``train/ok`` trains, so they train it again first (into a scratch folder) when ``train/ok`` is not
among the cases asked for.

Each case runs ``ionfield-train`` (``python -m ionfield.models.train.runner``) or ``ionfield-md``
(``python -m ionfield.models.md.runner``) on tiny inputs in a scratch job folder, as a ``core.direct`` job
does: stdout to the CalcJob's stdout file, stderr to ``_scheduler-stderr.txt``. The folder's contents are then
retrieved into the fixture folder by aiida-core's own retrieval (``retrieve_files_from_list``) with the
CalcJob's ``retrieve_list``, so a fixture holds what a ``retrieved`` node of that CalcJob holds, laid out the
same way. Beside them is the one input the parsers read, ``settings.json`` (what was given as ``settings``);
``generate_calc_job_node`` (``tests/conftest.py``) makes it the ``settings`` input, not a retrieved file.

A model package is about 0.8 MB (nequip's code travels inside it), so ``train/ok`` keeps no
``model.nequip.zip``; its tests give the parser a stand-in package. The cases:

* ``train/ok``: 4 epochs on 12 synthetic Li3N frames; ``train/nan_loss``: the same with a learning rate of
  1e9 (the loss is NaN from the second step); ``train/input_error``: a dataset of 2 frames (3 are needed);
* ``md/completed``: 300 steps of Langevin MD (friction 1/20 fs) at 300 K under 0.05 V/Å on 2x2x2 alpha-Li3N
  (HDF5 trajectory);
* ``md/close_contact``: 600 K under 0.3 V/Å with ``min_distance`` 1.6 Å: stops within some 20 steps
  (extxyz trajectory);
* ``md/killed``: a long run killed by SIGKILL once 5 log rows and a checkpoint are written (no ``result.json``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
REPO = Path(__file__).resolve().parents[3]
SETTINGS = 'settings.json'
SCHEDULER_STDOUT = '_scheduler-stdout.txt'
SCHEDULER_STDERR = '_scheduler-stderr.txt'

TRAIN_SETTINGS = {'seed': 3, 'max_epochs': 4, 'patience': 4}
TRAIN_CASES = {
    'ok': (12, TRAIN_SETTINGS),
    'nan_loss': (12, {**TRAIN_SETTINGS, 'max_epochs': 2, 'learning_rate': 1e9}),
    'input_error': (2, TRAIN_SETTINGS),
}
MD_CASES = {
    'completed': {
        'steps': 300,
        'temperature_K': 300,
        'friction_per_fs': 0.05,
        'field': [0, 0, 0.05],
        'log_every': 10,
        'trajectory_every': 75,
        'seed': 7,
    },
    'close_contact': {
        'steps': 400,
        'temperature_K': 600,
        'field': [0, 0, 0.3],
        'min_distance': 1.6,
        'max_temperature_K': 1e5,
        'log_every': 2,
        'trajectory_every': 5,
        'trajectory_format': 'extxyz',
        'seed': 7,
    },
    'killed': {
        'steps': 100000,
        'temperature_K': 300,
        'log_every': 10,
        'trajectory_every': 10,
        'checkpoint_every': 20,
        'seed': 7,
    },
}
KILL_AFTER_ROWS = 5


def calculation_class(name: str):
    from ionfield.plugins.calculations.md import MDCalculation
    from ionfield.plugins.calculations.train import TrainCalculation

    return {'md': MDCalculation, 'train': TrainCalculation}[name]


def retrieve(workdir: Path, target: Path, calculation: str) -> None:
    """Into ``target``: what aiida-core retrieves from the job folder ``workdir`` of a ``calculation`` job."""
    from aiida.engine.daemon.execmanager import retrieve_files_from_list
    from aiida.transports.plugins.local import LocalTransport

    retrieve_list = [*calculation_class(calculation).retrieve_list(), SCHEDULER_STDOUT, SCHEDULER_STDERR]
    job = types.SimpleNamespace(get_remote_workdir=lambda: str(workdir), pk=None)
    target.mkdir(parents=True)
    with LocalTransport() as transport:
        asyncio.run(retrieve_files_from_list(job, transport, str(target), retrieve_list))


def start(workdir: Path, calculation: str, arguments: list[str]) -> subprocess.Popen:
    """The console script in ``workdir``, its output where a ``core.direct`` job puts it."""
    stdout = open(workdir / calculation_class(calculation).STDOUT_FILE, 'w')  # closed by finish()
    stderr = open(workdir / SCHEDULER_STDERR, 'w')
    (workdir / SCHEDULER_STDOUT).write_text('')
    module = f'ionfield.models.{calculation}.runner'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    command = [sys.executable, '-m', module, '--device', 'cpu', *arguments]
    process = subprocess.Popen(command, cwd=workdir, stdout=stdout, stderr=stderr, env=env)
    process.files = (stdout, stderr)
    return process


def finish(process: subprocess.Popen) -> int:
    code = process.wait()
    for handle in process.files:
        handle.close()
    return code


def store(workdir: Path, calculation: str, case: str, settings: dict) -> Path:
    target = FIXTURES / calculation / case
    shutil.rmtree(target, ignore_errors=True)
    retrieve(workdir, target, calculation)
    (target / SETTINGS).write_text(json.dumps(settings, indent=1) + '\n')
    return target


def make_train(case: str, scratch: Path, keep: bool = True) -> Path:
    """Run ``ionfield-train`` for ``case``; return its job folder (with the model of ``ok``)."""
    sys.path.insert(0, str(REPO))
    from tests.models.synthetic import synthetic_dataset

    frames, settings = TRAIN_CASES[case]
    workdir = scratch / f'train-{case}'
    workdir.mkdir()
    synthetic_dataset(frames, bec_share=0.5).save(workdir / 'dataset.npz')
    (workdir / SETTINGS).write_text(json.dumps(settings))
    code = finish(start(workdir, 'train', ['--dataset', 'dataset.npz', '--settings', SETTINGS]))
    status = json.loads((workdir / 'result.json').read_text())['status']
    assert status == case, f'train/{case}: the run ended {status!r} (exit {code})'
    if keep:
        target = store(workdir, 'train', case, settings)
        (target / 'model.nequip.zip').unlink(missing_ok=True)  # too large to keep (see the module docstring)
    return workdir


def make_md(case: str, scratch: Path, model: Path) -> None:
    from ionfield.models.md.trajectory import read_trajectory
    from ionfield.models.structures.reference import alpha_li3n

    settings = MD_CASES[case]
    workdir = scratch / f'md-{case}'
    workdir.mkdir()
    alpha_li3n().repeat((2, 2, 2)).write(workdir / 'structure.xyz', format='extxyz')
    (workdir / SETTINGS).write_text(json.dumps(settings))
    shutil.copy(model, workdir / 'model_0.nequip.zip')
    arguments = ['--structure', 'structure.xyz', '--settings', SETTINGS, '--model', 'model_0.nequip.zip']
    process = start(workdir, 'md', arguments)
    if case == 'killed':
        thermo = workdir / 'thermo.csv'
        while not (thermo.is_file() and len(thermo.read_text().splitlines()) > KILL_AFTER_ROWS):
            assert process.poll() is None, 'md/killed: the run ended before it was killed'
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        finish(process)
        assert not (workdir / 'result.json').exists() and (workdir / 'state.npz').is_file()
        read_trajectory(workdir / 'trajectory.h5')  # raises when the kill left it unreadable: run again
    else:
        finish(process)
        status = json.loads((workdir / 'result.json').read_text())['status']
        assert status == case, f'md/{case}: the run ended {status!r}'
    store(workdir, 'md', case, settings)


def main(cases: list[str]) -> None:
    cases = cases or [f'train/{case}' for case in TRAIN_CASES] + [f'md/{case}' for case in MD_CASES]
    unknown = sorted(set(cases) - {f'train/{c}' for c in TRAIN_CASES} - {f'md/{c}' for c in MD_CASES})
    if unknown:
        raise SystemExit(f'unknown cases {unknown}')
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model = None
        for case in [case for case in cases if case.startswith('train/')]:
            workdir = make_train(case.split('/')[1], scratch)
            if case == 'train/ok':
                model = workdir / 'model.nequip.zip'
            print(f'made {case}')
        for case in [case for case in cases if case.startswith('md/')]:
            if model is None:
                model = make_train('ok', scratch, keep=False) / 'model.nequip.zip'
            make_md(case.split('/')[1], scratch, model)
            print(f'made {case}')


if __name__ == '__main__':
    main(sys.argv[1:])
