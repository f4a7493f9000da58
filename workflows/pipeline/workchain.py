"""``PipelineWorkChain`` (``ionfield.pipeline``, ``ionfield run``): from a structure to transport numbers one can trust.

1. **Check** every structure (``StructureCheckWorkChain``: overlaps, periodicity, cell).
2. **Build the campaign's systems** (calcfunctions): the campaign cell (a supercell with the protocol's
   defect, made so that DFT sees an insulator: a charged vacancy on a compensating background, a Frenkel
   pair or a Schottky set; :mod:`ionfield.models.structures.defects`) and the explored cell (the same defect
   in a cell the labelling can afford, or the campaign cell itself).
3. **Active learning on those systems** (``ActiveLearningWorkChain``): the primitive cell (cheap DFPT Born
   charges) and the defect cell, over the campaign's own temperatures and fields.
4. **Validation gate** (``ValidationWorkChain`` per structure): the committee's first member against DFT;
   a failure stops here unless ``override_validation`` is set (the report then says so).
5. **Transport campaign** (``TransportCampaignWorkChain``) on the campaign cells, driven by the committee.
6. **One report** (calcfunction ``pipeline_report``): stages, active-learning history, validation table,
   transport per direction, published values.

Every stage is a child process. A stage that fails ends the pipeline with its exit code (900-909) after the
report of what was done is written; everything finished is an output, and ``ionfield run --restart PK``
(:mod:`.restart`) goes on from the last finished stage (``restart`` inputs: a finished exploration's
committee, dataset and history, finished validation tables).
"""

from __future__ import annotations

import math

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from ionfield.models.active_learning.settings import ActiveLearningInputError, ActiveLearningSettings
from ionfield.models.pipeline.settings import (
    PipelineInputError,
    PipelineSettings,
    coverage_problems,
    exploration_grid,
)
from ionfield.models.structures.defects import DefectError, make_defect, oxidation_states
from ionfield.models.structures.sampling import make_supercell as supercell_atoms
from ionfield.models.transport.settings import CampaignInputError, CampaignSettings
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import CommitteeData
from ionfield.workflows.active_learning import workchain as active_learning
from ionfield.workflows.active_learning.workchain import ActiveLearningWorkChain
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin
from ionfield.workflows.structures.check import StructureCheckWorkChain
from ionfield.workflows.structures.functions import make_defect_cell, make_supercell
from ionfield.workflows.transport.workchain import TransportCampaignWorkChain
from ionfield.workflows.validation.workchain import ValidationWorkChain

from .functions import pipeline_report

__all__ = ('PipelineWorkChain',)


def _settings(inputs) -> PipelineSettings:
    return PipelineSettings.from_dict(inputs['settings'].get_dict() if 'settings' in inputs else {})


def _dict(inputs, *path) -> dict:
    node = inputs
    for part in path:
        if part not in node:
            return {}
        node = node[part]
    return node.get_dict()


def validate_inputs(inputs, _ctx=None):
    """Everything that can be known wrong before anything runs (each stage checks its own settings besides)."""
    try:
        settings = _settings(inputs)
        explore = ActiveLearningSettings.from_dict(_dict(inputs, 'active_learning', 'settings'))
        campaign = CampaignSettings.from_dict(_dict(inputs, 'campaign', 'settings'))
    except (PipelineInputError, ActiveLearningInputError, CampaignInputError):
        return None  # the port validators say why
    structures = dict(inputs.get('structures', {}))
    if not structures:
        return 'give at least one structure in `structures`'
    spec = settings.defect_spec
    for key, structure in sorted(structures.items()):
        if settings.mobile_species not in structure.get_symbols_set():
            return (
                f'structure `{key}` ({structure.get_formula()}) has no {settings.mobile_species}, the mobile species: '
                'nothing to measure the transport of (set `mobile_species`)'
            )
        atoms = structure.get_ase()
        for name, cell in (('explored', settings.explore_cell), ('campaign', settings.supercell)):
            try:
                make_defect(supercell_atoms(atoms, cell), spec, settings.seed, settings.oxidation_states)
            except (DefectError, ValueError) as exc:
                return f'structure `{key}`: the {name} cell {cell} cannot take the defect {spec.to_dict()}: {exc}'
    label = inputs.get('active_learning', {}).get('label', {})
    engine = label['engine'].value if 'engine' in label else 'qe'
    for key, structure in sorted(structures.items()):
        problem = active_learning.labelling_problem(structure, label)
        if problem:
            return f'structure `{key}` cannot be labelled: {problem}'
    if spec.charged:
        if engine != 'qe':
            return (
                f'a charged defect needs a compensating background, which the `{engine}` engine is not given here: '
                'use `frenkel` or `schottky` (stoichiometric), or the qe engine'
            )
        if 'oxidation_states' not in label.get('qe', {}):
            return (
                'a charged defect but the labelling has no `oxidation_states`: DFT would see a neutral, metallic cell'
            )
    grid = {'temperatures_K': explore.temperatures_K, 'fields': explore.fields}
    problems = coverage_problems(grid, campaign.to_dict())
    if problems and 'committee' not in inputs.get('restart', {}):
        return 'the campaign leaves the explored grid: ' + '; '.join(problems)
    has_field = any(any(f) for f in campaign.fields)
    no_dataset = 'dataset' not in inputs.get('active_learning', {}) and 'committee' not in inputs.get('restart', {})
    if has_field and no_dataset and explore.initial_bec_fraction == 0 and explore.bec_fraction == 0:
        return 'the campaign applies a field but the DFPT budget is zero (initial_bec_fraction = bec_fraction = 0)'
    if has_field and explore.bec_max_atoms is not None and not settings.explore_primitive:
        natoms = min(len(s.sites) * math.prod(settings.explore_cell) for s in structures.values())
        if natoms > explore.bec_max_atoms and no_dataset:
            return (
                f'the campaign applies a field but no explored cell is small enough for DFPT (bec_max_atoms '
                f'{explore.bec_max_atoms}, the explored cell has ~{natoms} atoms): set explore_primitive'
            )
    return None


def _copy_inputs(target, values: dict, exclude=()) -> None:
    """Set ``values`` (a pruned nested dict of a stage's builder) port by port into the namespace ``target``.

    A whole namespace assigned at once is validated as one, and an engine namespace left empty (``vasp`` when
    labelling with ``qe``) then fails on its required ports.
    """
    for key, value in values.items():
        if key in exclude or key == 'metadata':
            continue
        if isinstance(value, dict):
            _copy_inputs(target[key], value)
        else:
            target[key] = value


def _span(node) -> float:
    return node.mtime.timestamp() - node.ctime.timestamp()


class PipelineWorkChain(ProtocolMixin, WorkChain):
    """Check -> systems -> active learning on them -> validation gate -> transport campaign -> one report."""

    protocol_file = ProtocolFile(__package__, 'protocol.yaml')

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            help='The primitive (or conventional) cells by short name; each system of the pipeline is made of them.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            default=lambda: orm.Dict(PipelineSettings().to_dict()),
            validator=settings_validator(PipelineSettings, 'pipeline'),
            help='PipelineSettings: mobile species, campaign and explored supercells, defect, validation override.',
        )
        spec.input(
            'references',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='Structure key -> reference structure name (e.g. alpha-Li3N), for the published values in the report.',
        )
        spec.expose_inputs(
            ActiveLearningWorkChain,
            namespace='active_learning',
            exclude=('structures',),
            namespace_options={
                'help': 'ActiveLearningWorkChain inputs; its seeds are the pipeline systems.',
                'validator': None,
            },
        )
        spec.expose_inputs(
            ValidationWorkChain,
            namespace='validation',
            exclude=('structure', 'model', 'override', 'samples'),
            namespace_options={
                'help': 'ValidationWorkChain inputs (settings, labelling) of every structure.',
                'validator': None,
            },
        )
        spec.expose_inputs(
            TransportCampaignWorkChain,
            namespace='campaign',
            exclude=('structures', 'model', 'committee'),
            namespace_options={
                'help': 'TransportCampaignWorkChain inputs (settings, MD code and options).',
                'validator': None,
            },
        )
        spec.input_namespace(
            'restart', required=False, help='Results of finished stages of an earlier run (--restart).'
        )
        spec.input(
            'restart.committee', valid_type=CommitteeData, required=False, help='A finished exploration: its committee.'
        )
        spec.input(
            'restart.dataset', valid_type=DatasetData, required=False, help='A finished exploration: its dataset.'
        )
        spec.input('restart.history', valid_type=orm.List, required=False, help='A finished exploration: its history.')
        spec.input_namespace(
            'restart.validation', valid_type=orm.Dict, dynamic=True, required=False, help='Finished validation tables.'
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.run_checks,
            cls.inspect_checks,
            cls.build_systems,
            if_(cls.should_explore)(cls.run_exploration, cls.inspect_exploration).else_(cls.reuse_exploration),
            cls.run_validation,
            cls.inspect_validation,
            cls.run_campaign,
            cls.inspect_campaign,
            cls.finish,
        )
        spec.output_namespace(
            'checks', valid_type=orm.Dict, dynamic=True, help='The structure check of each structure.'
        )
        spec.output_namespace(
            'systems', valid_type=orm.StructureData, dynamic=True, help='Explored and campaign cells.'
        )
        spec.output_namespace(
            'defects', valid_type=orm.Dict, dynamic=True, help='The defect of each cell and its charge.'
        )
        spec.output('dataset', valid_type=DatasetData, required=False, help='Every DFT frame of the exploration.')
        spec.output('committee', valid_type=CommitteeData, required=False, help='The committee the campaign ran with.')
        spec.output('history', valid_type=orm.List, required=False, help='The active-learning history.')
        spec.output_namespace('validation', valid_type=orm.Dict, dynamic=True, help='Validation table per structure.')
        spec.output_namespace(
            'validation_plots', valid_type=orm.SinglefileData, dynamic=True, help='Validation figure per structure.'
        )
        spec.output('campaign_summary', valid_type=orm.Dict, required=False, help='The campaign summary.')
        spec.output('campaign_report', valid_type=orm.SinglefileData, required=False, help="The campaign's report.")
        spec.output('report', valid_type=orm.SinglefileData, required=False, help='The pipeline report (HTML).')
        spec.output(
            'stages', valid_type=orm.List, required=False, help='What each stage did: process, status, wall time.'
        )
        spec.exit_code(901, 'ERROR_STRUCTURE_CHECK', message='structure check failed: {message}')
        spec.exit_code(902, 'ERROR_SYSTEMS', message='the campaign systems could not be built: {message}')
        spec.exit_code(
            903,
            'ERROR_ACTIVE_LEARNING',
            message='active learning failed: {message}; every finished iteration is kept: '
            '`ionfield run --restart {pk}`',
        )
        spec.exit_code(
            904,
            'ERROR_VALIDATION_GATE',
            message='the model failed validation ({message}): the campaign was not run; the tables are in '
            '`validation`. Improve the model, or go on regardless with '
            '`ionfield run --restart {pk} --override-validation`',
        )
        spec.exit_code(
            905, 'ERROR_VALIDATION', message='validation could not be done: {message}; `ionfield run --restart {pk}`'
        )
        spec.exit_code(
            906, 'ERROR_CAMPAIGN', message='the transport campaign failed: {message}; `ionfield run --restart {pk}`'
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        structures: dict[str, orm.StructureData],
        *,
        train_code: orm.AbstractCode,
        md_code: orm.AbstractCode,
        protocol: str | None = None,
        overrides: dict | None = None,
        engine: str = 'qe',
        label_overrides: dict | None = None,
        references: dict[str, str] | None = None,
        md_options: dict | None = None,
        **engine_arguments,
    ):
        """A builder from the pipeline protocol: each stage's protocol and overrides, the exploration grid made from
        the campaign's settings, the formal oxidation states given to the labelling when the defect is charged.

        ``overrides`` may set any key of the pipeline protocol (``settings``, ``*_protocol``, and the stage overrides
        ``active_learning``, ``validation``, ``campaign``); ``engine_arguments`` go to the labelling engine.
        """
        values = cls.get_protocol_inputs(protocol, overrides)
        settings = PipelineSettings.from_dict(values['settings'])
        campaign_values = TransportCampaignWorkChain.get_protocol_inputs(
            values['campaign_protocol'], values['campaign']
        )
        campaign = CampaignSettings.from_dict(campaign_values['settings'])
        al_overrides = dict(values['active_learning'])
        grid = exploration_grid(campaign.to_dict())
        al_settings = {**grid, **al_overrides.get('settings', {}), 'seed': settings.seed}
        al_overrides['settings'] = al_settings
        label_overrides = dict(label_overrides or {})
        if settings.defect_spec.charged and engine == 'qe':
            states = settings.oxidation_states
            if not states:
                states = {}
                for structure in structures.values():
                    states.update(oxidation_states(structure.get_ase()))
            label_overrides['oxidation_states'] = states
        explore = ActiveLearningWorkChain.get_builder_from_protocol(
            {},
            train_code=train_code,
            md_code=md_code,
            protocol=values['active_learning_protocol'],
            overrides=al_overrides,
            engine=engine,
            label_overrides=label_overrides,
            **engine_arguments,
        )
        first = next(iter(structures.values()))
        validation = ValidationWorkChain.get_builder_from_protocol(
            first,
            None,
            protocol=values['validation_protocol'],
            overrides=values['validation'],
            engine=engine,
            label_overrides=label_overrides,
            **engine_arguments,
        )
        builder = cls.get_builder()
        builder.structures = dict(structures)
        builder.settings = orm.Dict(settings.to_dict())
        builder.references = orm.Dict(dict(references or {}))
        _copy_inputs(builder.active_learning, explore._inputs(prune=True), exclude=('structures',))
        _copy_inputs(builder.validation, validation._inputs(prune=True), exclude=('structure', 'model'))
        builder.campaign.settings = orm.Dict(campaign.to_dict())
        builder.campaign.md.code = md_code
        builder.campaign.md.max_concurrent = orm.Int(campaign_values['max_concurrent_md'])
        if md_options:
            builder.campaign.md.options = orm.Dict(md_options)
            builder.active_learning.md.options = orm.Dict(md_options)
        return builder

    # --- steps ----------------------------------------------------------------------------------------

    def setup(self):
        self.ctx.settings = _settings(self.inputs)
        self.ctx.stages = []
        self.ctx.committee = self.inputs.restart.get('committee') if 'restart' in self.inputs else None
        self.ctx.history = self.inputs.restart.get('history') if 'restart' in self.inputs else None
        self.ctx.validation = {}
        self.ctx.campaign_summary = None
        self.ctx.notes = []

    def _record(self, stage: str, status: str, node=None, message: str = '') -> None:
        """One entry of the ``stages`` output: the stage, its process (pk, uuid, wall time), status and message."""
        entry = {'stage': stage, 'status': status, 'message': message}
        if node is not None:
            entry.update({'process': f'{node.process_label}<{node.pk}>', 'uuid': node.uuid, 'wall_s': _span(node)})
        self.ctx.stages.append(entry)
        process = f' ({entry["process"]})' if node is not None else ''
        self.report(f'stage {stage}: {status}{process}' + (f': {message}' if message else ''))

    def _stop(self, exit_code):
        """Write the report of what was done, then end with ``exit_code``."""
        self.finish()
        return exit_code

    def run_checks(self):
        futures = {}
        for key, structure in sorted(self.inputs.structures.items()):
            node = self.submit(
                StructureCheckWorkChain, structure=structure, metadata={'call_link_label': f'check_{key}'}
            )
            futures[f'check_{key}'] = node
        return ToContext(**futures)

    def inspect_checks(self):
        failures = []
        for key in sorted(self.inputs.structures):
            node = self.ctx[f'check_{key}']
            if 'summary' in node.outputs:
                self.out(f'checks.{key}', node.outputs.summary)
            if node.is_finished_ok:
                self._record('check', 'finished', node)
            else:
                failures.append(f'{key}: [{node.exit_status}] {node.exit_message}')
                self._record('check', 'failed', node, failures[-1])
        if failures:
            return self._stop(self.exit_codes.ERROR_STRUCTURE_CHECK.format(message='; '.join(failures)))
        return None

    def build_systems(self):
        s = self.ctx.settings
        defect = orm.Dict(s.defect_spec.to_dict())
        extra = {}
        if 'qe' in self.inputs.active_learning.label and 'oxidation_states' in self.inputs.active_learning.label.qe:
            extra['oxidation_states'] = self.inputs.active_learning.label.qe.oxidation_states
        elif s.oxidation_states:
            extra['oxidation_states'] = orm.Dict(s.oxidation_states)
        self.ctx.explore_cells, self.ctx.campaign_cells = {}, {}
        for key, structure in sorted(self.inputs.structures.items()):
            made = {}
            for name, cell in (('explore', s.explore_cell), ('campaign', s.supercell)):
                if name == 'campaign' and list(cell) == list(s.explore_cell):
                    made['campaign'] = made['explore']
                    continue
                supercell, node = make_supercell.run_get_node(structure, orm.List(list(cell)))
                if node.is_failed:
                    return self._stop(
                        self.exit_codes.ERROR_SYSTEMS.format(message=f'{key} {cell}: {node.exit_message}')
                    )
                result, node = make_defect_cell.run_get_node(supercell, defect, orm.Int(s.seed), **extra)
                if node.is_failed:
                    return self._stop(
                        self.exit_codes.ERROR_SYSTEMS.format(message=f'{key} {cell}: {node.exit_message}')
                    )
                made[name] = result
                self.out(f'systems.{key}_{name}', result['cell'])
                self.out(f'defects.{key}_{name}', result['defect'])
            self.ctx.explore_cells[key] = made['explore']['cell']
            self.ctx.campaign_cells[key] = made['campaign']['cell']
            charge = made['campaign']['defect']['charge']
            self.report(
                f'{key}: explored cell {len(made["explore"]["cell"].sites)} atoms, campaign cell '
                f'{len(made["campaign"]["cell"].sites)} atoms, defect {s.defect_spec.mode} (charge {charge:+g} e)'
            )
        self._record('systems', 'finished')
        return None

    def should_explore(self):
        return self.ctx.committee is None

    def reuse_exploration(self):
        """A restart after a finished exploration: its committee, dataset and history go on."""
        self.out('committee', self.ctx.committee)
        if 'dataset' in self.inputs.restart:
            self.out('dataset', self.inputs.restart.dataset)
        if self.ctx.history is not None:
            self.out('history', self.ctx.history)
        self._record('active_learning', 'reused', message=f'the committee {self.ctx.committee.uuid} of an earlier run')

    def run_exploration(self):
        inputs = self.exposed_inputs(ActiveLearningWorkChain, namespace='active_learning')
        seeds = {}
        for key in sorted(self.inputs.structures):
            if self.ctx.settings.explore_primitive:
                seeds[f'{key}_primitive'] = self.inputs.structures[key]
            seeds[f'{key}_cell'] = self.ctx.explore_cells[key]
        inputs['structures'] = seeds
        inputs['metadata'] = {'call_link_label': 'active_learning'}
        try:
            node = self.submit(ActiveLearningWorkChain, **inputs)
        except ValueError as exc:
            return self._stop(self.exit_codes.ERROR_ACTIVE_LEARNING.format(message=str(exc), pk=self.node.pk))
        self.report(f'ActiveLearningWorkChain<{node.pk}> on {", ".join(sorted(seeds))}')
        return ToContext(exploration=node)

    def inspect_exploration(self):
        node = self.ctx.exploration
        for name in ('dataset', 'history'):
            if name in node.outputs:
                self.out(name, node.outputs[name])
        if 'history' in node.outputs:
            self.ctx.history = node.outputs.history
        if not node.is_finished_ok or 'committee' not in node.outputs:
            message = f'[{node.exit_status}] {node.exit_message}'
            self._record('active_learning', 'failed', node, message)
            return self._stop(self.exit_codes.ERROR_ACTIVE_LEARNING.format(message=message, pk=self.node.pk))
        self.ctx.committee = node.outputs.committee
        self.out('committee', self.ctx.committee)
        self._record('active_learning', 'finished', node, node.outputs.history.get_list()[-1].get('message', ''))
        return None

    def run_validation(self):
        done = dict(self.inputs.restart.get('validation', {})) if 'restart' in self.inputs else {}
        futures = {}
        model = self.ctx.committee.members[0]
        for key, structure in sorted(self.inputs.structures.items()):
            if key in done:
                self.ctx.validation[key] = done[key]
                self.out(f'validation.{key}', done[key])
                self._record('validation', 'reused', message=f'{key}: the table {done[key].uuid} of an earlier run')
                continue
            inputs = self.exposed_inputs(ValidationWorkChain, namespace='validation')
            inputs.update(
                structure=structure,
                model=model,
                override=orm.Bool(self.ctx.settings.override_validation),
                metadata={'call_link_label': f'validation_{key}'},
            )
            node = self.submit(ValidationWorkChain, **inputs)
            futures[f'validation_{key}'] = node
        return ToContext(**futures)

    def inspect_validation(self):
        failed_gate, errors = [], []
        for key in sorted(self.inputs.structures):
            node = self.ctx.get(f'validation_{key}')
            if node is not None:
                if 'table' in node.outputs:
                    self.ctx.validation[key] = node.outputs.table
                    self.out(f'validation.{key}', node.outputs.table)
                if 'plot' in node.outputs:
                    self.out(f'validation_plots.{key}', node.outputs.plot)
                gate = node.exit_status == ValidationWorkChain.exit_codes.ERROR_VALIDATION_FAILED.status
                if node.is_finished_ok or (gate and key in self.ctx.validation):
                    self._record('validation', 'finished' if node.is_finished_ok else 'failed', node)
                else:
                    errors.append(f'{key}: [{node.exit_status}] {node.exit_message}')
                    self._record('validation', 'failed', node, errors[-1])
                    continue
            table = self.ctx.validation[key]
            if not table['passed']:
                if self.ctx.settings.override_validation:
                    note = (
                        f'validation of {key} FAILED on {", ".join(table["failures"])} and was overridden: the '
                        'transport numbers come from a model that did not pass'
                    )
                    self.ctx.notes.append(note)
                    self.report(note)
                else:
                    failed_gate.append(f'{key}: {", ".join(table["failures"])}')
        if errors:
            return self._stop(self.exit_codes.ERROR_VALIDATION.format(message='; '.join(errors), pk=self.node.pk))
        if failed_gate:
            return self._stop(
                self.exit_codes.ERROR_VALIDATION_GATE.format(message='; '.join(failed_gate), pk=self.node.pk)
            )
        return None

    def run_campaign(self):
        inputs = self.exposed_inputs(TransportCampaignWorkChain, namespace='campaign')
        inputs['structures'] = dict(self.ctx.campaign_cells)
        inputs['committee'] = self.ctx.committee
        inputs['metadata'] = {'call_link_label': 'campaign'}
        try:
            node = self.submit(TransportCampaignWorkChain, **inputs)
        except ValueError as exc:
            return self._stop(self.exit_codes.ERROR_CAMPAIGN.format(message=str(exc), pk=self.node.pk))
        return ToContext(campaign=node)

    def inspect_campaign(self):
        node = self.ctx.campaign
        if 'summary' in node.outputs:
            self.ctx.campaign_summary = node.outputs.summary
            self.out('campaign_summary', node.outputs.summary)
        if 'report' in node.outputs:
            self.out('campaign_report', node.outputs.report)
        if not node.is_finished_ok:
            message = f'[{node.exit_status}] {node.exit_message}'
            self._record('campaign', 'failed', node, message)
            return self._stop(self.exit_codes.ERROR_CAMPAIGN.format(message=message, pk=self.node.pk))
        self._record('campaign', 'finished', node)
        return None

    def finish(self):
        nodes = {}
        if self.ctx.history is not None:
            nodes['history'] = self.ctx.history
        for key, table in self.ctx.validation.items():
            nodes[f'validation_{key}'] = table
            node = self.ctx.get(f'validation_{key}')
            if node is not None and 'plot' in node.outputs:
                nodes[f'validation_plot_{key}'] = node.outputs.plot
        if self.ctx.campaign_summary is not None:
            nodes['campaign_summary'] = self.ctx.campaign_summary
            campaign = self.ctx.get('campaign')
            if campaign is not None and 'plots' in campaign.outputs:
                for name, plot in campaign.outputs.plots.items():
                    nodes[f'campaign_plot_{name}'] = plot
        stages = orm.List(list(self.ctx.stages)).store()
        names = ', '.join(sorted(self.inputs.structures))
        outputs = pipeline_report(
            stages=stages,
            title=orm.Str(f'Pipeline {self.node.uuid[:8]}: {names}'),
            references=self.inputs.references,
            notes=orm.List(list(self.ctx.notes)),
            metadata={'call_link_label': 'pipeline_report'},
            **nodes,
        )
        self.out('report', outputs['report'])
        self.out('stages', stages)
