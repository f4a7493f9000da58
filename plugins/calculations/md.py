"""``MDCalculation`` (``ionfield.md``): one ``ionfield-md`` run on any computer (localhost, a GPU node).

The job folder gets the structure (``structure.xyz``), the validated settings (``settings.json``)
and the model(s): one ``model``, or a ``committee`` whose first member drives the dynamics and
whose members are all evaluated every ``monitor_every`` steps. ``ionfield-md`` writes the
trajectory, logs, state and ``result.json``; the parser stores them.

To continue a run (after a walltime hit, or to extend it), give the ``parent_folder`` of the
earlier run: its trajectory, logs and ``state.npz`` are copied in and the run goes on from the
saved step up to ``steps``.

Exit codes 500-519 (MD stage). A run that stops early (uncertainty, close contact, temperature
runaway, NaN) still has every output up to the stop, and its exit code says which condition.
"""

from __future__ import annotations

import io
import json

from aiida import orm

from ionfield.models.md.engine import STATE_FILE
from ionfield.models.md.logs import THERMO_FILE, UNCERTAINTY_FILE
from ionfield.models.md.runner import RESULT_FILE, SETTINGS_FILE, STRUCTURE_FILE
from ionfield.models.md.settings import MDSettings
from ionfield.models.md.trajectory import FILE_NAMES
from ionfield.plugins.calculations.runner import RunnerCalculation
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.model import CommitteeData, ModelData
from ionfield.plugins.data.trajectory import MDTrajectoryData

validate_settings = settings_validator(MDSettings, 'MD')


def validate_inputs(inputs, _ctx=None):
    has_model, has_committee = 'model' in inputs, 'committee' in inputs
    if has_model == has_committee:
        return 'give exactly one of `model` and `committee`'
    models = [inputs['model']] if has_model else inputs['committee'].members
    species = set(inputs['structure'].get_symbols_set())
    for model in models:
        unknown = sorted(species - set(model.species))
        if unknown:
            return f'model {model.pk} does not know species {unknown} of the structure (it has {model.species})'
    settings = inputs['settings'].get_dict() if 'settings' in inputs else {}
    field = settings.get('field', (0, 0, 0))
    if any(field) and not all(model.has_bec for model in models):
        return 'a field was asked for but the model has no Born-charge head: train one with bec=True'
    bounds = settings.get('max_force_deviation') is not None or settings.get('max_bec_deviation') is not None
    if bounds and not has_committee:
        return 'uncertainty bounds need a committee (input `committee`) to measure uncertainty'
    return None


class MDCalculation(RunnerCalculation):
    """Molecular dynamics of a trained model (or committee) under a uniform electric field."""

    PARSER = 'ionfield.md'
    STDOUT_FILE = 'ionfield-md.out'
    RETRIEVE = (RESULT_FILE, THERMO_FILE, UNCERTAINTY_FILE, STATE_FILE, *FILE_NAMES.values())

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The starting structure.')
        spec.input('model', valid_type=ModelData, required=False, help='The model that drives the dynamics.')
        spec.input(
            'committee',
            valid_type=CommitteeData,
            required=False,
            help='A committee: its first member drives the dynamics, all members measure the uncertainty.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            validator=validate_settings,
            help='MDSettings as a dict (ensemble, steps, timestep_fs, temperature_K, field in V/Å, bec_mode, '
            'stop bounds, output cadence); defaults fill the rest.',
        )
        spec.input(
            'compiled',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Run the AOTInductor-compiled model files (they must have been compiled for this device).',
        )
        spec.input(
            'parent_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='Folder of an earlier run of this calculation: the run continues from its state.npz.',
        )
        spec.inputs.validator = validate_inputs

        spec.output('trajectory', valid_type=MDTrajectoryData, required=False, help='Frames (unwrapped positions).')
        spec.output(
            'thermo', valid_type=orm.ArrayData, required=False, help='T, E_pot, E_kin, field work, P per log step.'
        )
        spec.output(
            'uncertainty', valid_type=orm.ArrayData, required=False, help='Committee deviations per monitored step.'
        )
        spec.output(
            'summary', valid_type=orm.Dict, required=False, help='Stop reason, steps, timings, worst deviations.'
        )
        spec.output('state', valid_type=orm.SinglefileData, required=False, help='The state a restart continues from.')

        spec.exit_code(
            500,
            'ERROR_NO_RESULT',
            message='ionfield-md wrote no result (killed, out of walltime?); continue with `parent_folder`.',
            invalidates_cache=True,
        )
        spec.exit_code(501, 'ERROR_INPUT', message='the inputs cannot run: {message}')
        spec.exit_code(502, 'ERROR_MD_FAILED', message='the model or integrator failed: {message}')
        spec.exit_code(510, 'STOPPED_UNCERTAINTY', message='stopped on high committee uncertainty: {message}')
        spec.exit_code(511, 'STOPPED_CLOSE_CONTACT', message='stopped on a close contact: {message}')
        spec.exit_code(
            512,
            'STOPPED_TEMPERATURE_RUNAWAY',
            message='stopped on a temperature runaway: {message}',
        )
        spec.exit_code(
            513, 'STOPPED_NAN', message='stopped on non-finite positions or forces (timestep too large?): {message}'
        )

    def _models(self) -> list[ModelData]:
        return [self.inputs.model] if 'model' in self.inputs else self.inputs.committee.members

    def prepare_for_submission(self, folder):
        settings = MDSettings.from_dict(self.inputs.settings.get_dict() if 'settings' in self.inputs else {})
        with folder.open(SETTINGS_FILE, 'w') as handle:
            json.dump(settings.to_dict(), handle, indent=1)
        buffer = io.StringIO()
        self.inputs.structure.get_ase().write(buffer, format='extxyz')
        with folder.open(STRUCTURE_FILE, 'w') as handle:
            handle.write(buffer.getvalue())
        cmdline = ['--structure', STRUCTURE_FILE, '--settings', SETTINGS_FILE]
        compiled = self.inputs.compiled.value
        for index, model in enumerate(self._models()):
            name = f'model_{index}' + ('.nequip.pt2' if compiled else '.nequip.zip')
            if compiled:
                content = model.base.repository.get_object_content(model.COMPILED, mode='rb')
            else:
                content = model.get_package_bytes()
            with folder.open(name, 'wb') as handle:
                handle.write(content)
            cmdline += ['--model', name]
        remote_copy = []
        if 'parent_folder' in self.inputs:
            parent = self.inputs.parent_folder
            for name in (FILE_NAMES[settings.trajectory_format], THERMO_FILE, UNCERTAINTY_FILE, STATE_FILE):
                remote_copy.append((parent.computer.uuid, f'{parent.get_remote_path()}/{name}', name))
            cmdline += ['--restart', STATE_FILE]
        return self.runner_calcinfo(cmdline, remote_copy)
