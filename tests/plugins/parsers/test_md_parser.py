"""``MDParser`` on what real ``ionfield-md`` runs retrieved (``fixtures/md/``, made by ``make_fixtures.py``).

Each case is parsed from a ``CalcJobNode`` made by ``generate_calc_job_node``, no code runs: a completed run
under a field, a run stopped on a close contact, and a run killed before it wrote ``result.json``.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from aiida.plugins import CalculationFactory, ParserFactory

from ionfield.models.md.settings import MDSettings
from ionfield.models.md.stops import CLOSE_CONTACT, COMPLETED
from ionfield.models.md.trajectory import FILE_NAMES

from .make_fixtures import FIXTURES, SETTINGS, retrieve

MDCalculation = CalculationFactory('ionfield.md')
MDParser = ParserFactory('ionfield.md')


def parse(generate_calc_job_node, case: str):
    node = generate_calc_job_node('ionfield.md', case)
    results, calcfunction = MDParser.parse_from_node(node, store_provenance=False)
    return results, calcfunction, MDSettings.from_dict(node.inputs.settings.get_dict())


def test_completed_run(generate_calc_job_node):
    """300 steps of Langevin MD at 300 K under 0.05 V/Å on 32 atoms of alpha-Li3N."""
    results, calcfunction, settings = parse(generate_calc_job_node, 'completed')
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    summary = results['summary'].get_dict()
    assert summary['status'] == COMPLETED and summary['step'] == settings.steps
    assert summary['model_calls'] == settings.steps + 1 and 'state' in results

    trajectory = results['trajectory']
    frames = trajectory.read()
    assert trajectory.nframes == settings.steps // settings.trajectory_every + 1 == summary['frames_written']
    assert frames.steps.tolist() == list(range(0, settings.steps + 1, settings.trajectory_every))
    np.testing.assert_allclose(frames.times_fs, frames.steps * settings.timestep_fs)
    assert trajectory.field == list(settings.field) and trajectory.base.attributes.get('last_step') == settings.steps
    # positions are unwrapped: Li+ has drifted along the field (z) and N3- against it, about a fixed centre of mass
    # (the Born charges sum to zero, so the field exerts no net force)
    shift = frames.positions[-1] - frames.positions[0]
    lithium = frames.numbers == 3
    assert shift[lithium, 2].mean() > 0.05 and shift[~lithium, 2].mean() < -0.05
    masses = frames.atoms(0).get_masses()
    assert np.abs(masses @ shift / masses.sum()).max() < 1e-3

    thermo = results['thermo']
    steps = thermo.get_array('step')
    assert steps.tolist() == list(range(0, settings.steps + 1, settings.log_every))
    # after 5 thermostat times (1/friction) the kinetic temperature fluctuates about the set one by the canonical
    # spread T sqrt(2 / 3N); neighbouring rows are correlated, so the mean is judged as of half as many samples
    temperature = thermo.get_array('temperature_K')
    equilibrated = temperature[steps * settings.timestep_fs >= 5 / settings.friction_per_fs]
    spread = settings.temperature_K * np.sqrt(2 / (3 * trajectory.natoms))
    assert abs(equilibrated.mean() - settings.temperature_K) < 2 * spread / np.sqrt(len(equilibrated) / 2)
    assert 0.5 * spread < equilibrated.std() < 2 * spread
    # Li+ drifts along the field and N3- against it: the field has done positive work on the ions
    assert thermo.get_array('field_work_eV')[-1] > 0


def test_close_contact_stops_with_every_frame_up_to_the_stop(generate_calc_job_node):
    results, calcfunction, settings = parse(generate_calc_job_node, 'close_contact')
    assert calcfunction.exit_status == MDCalculation.exit_codes.STOPPED_CLOSE_CONTACT.status
    summary = results['summary'].get_dict()
    assert summary['status'] == CLOSE_CONTACT and summary['message'] in calcfunction.exit_message
    stop = summary['step']
    assert 0 < stop < settings.steps

    frames = results['trajectory'].read()  # extxyz
    assert frames.steps.tolist() == sorted({*range(0, stop + 1, settings.trajectory_every), stop})
    assert results['thermo'].get_array('step')[-1] == stop
    # the pair the message names is closer than min_distance in the last frame, and was not at the start
    i, j, distance = re.search(r'atoms (\d+) and (\d+) are ([\d.]+) Å apart', summary['message']).groups()
    last, first = frames.atoms(-1), frames.atoms(0)
    assert last.get_distance(int(i), int(j), mic=True) == pytest.approx(float(distance), abs=1e-3)
    assert float(distance) < settings.min_distance < first.get_distance(int(i), int(j), mic=True)


def test_killed_run_keeps_its_frames_and_checkpoint(generate_calc_job_node):
    """SIGKILLed mid-run: no ``result.json``, but every frame and log row flushed before the kill is attached."""
    results, calcfunction, settings = parse(generate_calc_job_node, 'killed')
    assert calcfunction.exit_status == MDCalculation.exit_codes.ERROR_NO_RESULT.status
    assert 'summary' not in results

    frames = results['trajectory'].read()  # HDF5, flushed every frame
    logged = results['thermo'].get_array('step')
    assert len(frames) >= 3 and frames.steps[0] == 0
    assert (np.diff(frames.steps) == settings.trajectory_every).all()
    # frame and log row are written together (log first): the kill may fall between them, no earlier
    assert set(frames.steps) <= set(logged) and len(frames) >= len(logged) - 1
    with results['state'].open(mode='rb') as handle:
        state = np.load(handle)
        step = int(state['step'])
    assert 0 < step <= frames.steps[-1] and step % settings.checkpoint_every == 0


@pytest.mark.parametrize('case', sorted(path.name for path in (FIXTURES / 'md').iterdir()))
def test_fixture_holds_what_the_calcjob_retrieves(case, tmp_path):
    """Retrieving a copy of the fixture with ``MDCalculation``'s retrieve list gives the fixture back, file for file
    (a fixture made before a change of the retrieve list, or by hand, would not)."""
    fixture = FIXTURES / 'md' / case
    shutil.copytree(fixture, tmp_path / 'job')
    retrieve(tmp_path / 'job', tmp_path / 'retrieved', 'md')
    assert files(tmp_path / 'retrieved') == files(fixture) - {SETTINGS}
    assert len(files(fixture) & set(FILE_NAMES.values())) == 1


def files(folder) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob('*') if path.is_file()}
