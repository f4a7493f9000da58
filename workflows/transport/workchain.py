"""``TransportCampaignWorkChain`` (``ionfield.campaign``): production field MD over a grid, then analysis.

For every structure x temperature x field x Z* mode x replica it runs one ``MDWorkChain`` (through
:mod:`ionfield.workflows.md.grid`, as active learning does; a run killed by its walltime continues) with a
trained model (or a committee, whose first member drives and whose spread is logged). Then, with
provenance, it analyses each condition (calcfunction ``analyse_replicas``: MSDs, D*, D_J, Haven
ratio, conductivities, drift and mobility) and the campaign (calcfunction ``campaign_report``:
Arrhenius fits, field enhancement, drift vs field, ablation, anisotropy, figures, HTML report).

Failed MD runs are recorded with their exit code and named in the report; the campaign analyses
what ran. Runs that stopped early (uncertainty, close contact, ...) keep their frames and are
analysed with a warning. Exit codes 700-709.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_

from ionfield.models.transport.condition import condition_key
from ionfield.models.transport.replicas import TransportInputError
from ionfield.models.transport.settings import CampaignInputError, CampaignSettings
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.model import CommitteeData, ModelData
from ionfield.workflows.md import grid as md_grid
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin

from .functions import analyse_replicas, campaign_report


def validate_inputs(inputs, _ctx=None):
    has_model, has_committee = 'model' in inputs, 'committee' in inputs
    if has_model == has_committee:
        return 'give exactly one of `model` and `committee`'
    if not inputs.get('structures'):
        return 'give at least one structure in `structures`'
    models = [inputs['model']] if has_model else inputs['committee'].members
    try:
        settings = CampaignSettings.from_dict(inputs['settings'].get_dict() if 'settings' in inputs else {})
    except CampaignInputError:
        return None  # the port validator says why
    for key, structure in inputs['structures'].items():
        for model in models:
            unknown = sorted(set(structure.get_symbols_set()) - set(model.species))
            if unknown:
                return f'structure `{key}` has species {unknown} the model {model.pk} does not know ({model.species})'
    if any(any(f) for f in settings.fields) and not all(model.has_bec for model in models):
        return 'fields were asked for but the model has no Born-charge head: train one with bec=True'
    return None


class TransportCampaignWorkChain(ProtocolMixin, WorkChain):
    """Field-MD transport campaign: structures x T x E x Z* mode x replicas, analysed."""

    protocol_file = ProtocolFile(__package__, 'protocol.yaml')

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structures: dict[str, orm.StructureData],
        *,
        model=None,
        committee=None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """A builder for the grid of the protocol (``overrides`` may set any ``settings`` key) on ``structures``,
        driven by ``model`` or ``committee``; ``options`` are the ``metadata.options`` of every MD job."""
        values = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.structures = dict(structures)
        if model is not None:
            builder.model = model
        if committee is not None:
            builder.committee = committee
        builder.settings = orm.Dict(CampaignSettings.from_dict(values['settings']).to_dict())
        builder.md.code = code
        builder.md.max_concurrent = orm.Int(values['max_concurrent_md'])
        if options:
            builder.md.options = orm.Dict(options)
        return builder

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            help='The systems, by a short name (used in keys and the report), as MD-ready supercells.',
        )
        spec.input('model', valid_type=ModelData, required=False, help='The model that drives every run.')
        spec.input(
            'committee',
            valid_type=CommitteeData,
            required=False,
            help='A committee instead of `model`: its first member drives, all members log their disagreement.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            validator=settings_validator(CampaignSettings, 'campaign'),
            help='CampaignSettings: temperatures_K, fields (V/Å), bec_modes, replicas, steps, timestep_fs, '
            'trajectory_every, equilibration_fs, seed, md_overrides, analysis options, min_success_fraction.',
        )
        md_grid.define_inputs(spec, 'campaign')
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.plan_md,
            while_(cls.md_queued)(cls.run_md),
            cls.inspect_md,
            cls.analyse,
            cls.report_campaign,
            cls.finalize,
        )

        spec.output_namespace('analysis', valid_type=orm.Dict, dynamic=True, help='Numbers of each condition.')
        spec.output_namespace('msd', valid_type=orm.ArrayData, dynamic=True, help='MSD curves of each condition.')
        spec.output_namespace('plots', valid_type=orm.SinglefileData, dynamic=True, help='PNG figures.')
        spec.output(
            'summary', valid_type=orm.Dict, help='Arrhenius, enhancement, drift, ablation, anisotropy, warnings.'
        )
        spec.output('report', valid_type=orm.SinglefileData, help='Self-contained HTML report.')

        spec.exit_code(701, 'ERROR_NO_USABLE_MD', message='no MD run gave a usable trajectory: {message}')
        spec.exit_code(
            702,
            'ERROR_TOO_MANY_MD_FAILED',
            message='{failed} of {total} MD runs failed (more than min_success_fraction allows); every result of '
            'the others is in the outputs: {message}',
        )
        spec.exit_code(703, 'ERROR_ANALYSIS', message='no condition could be analysed: {message}')

    def setup(self):
        self.ctx.settings = CampaignSettings.from_dict(
            self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        )
        self.ctx.failures = []
        if not self.ctx.settings.has_zero_field:
            self.report('warning: no E = 0 control in `fields`: no Arrhenius fit and no field-enhancement ratio')

    def plan_md(self):
        """Every run of the grid, in the queue that ``run_md`` launches in waves of ``md.max_concurrent``."""
        s = self.ctx.settings
        runs, self.ctx.conditions = [], {}
        drive = {'model': self.inputs.model} if 'model' in self.inputs else {'committee': self.inputs.committee}
        for s_index, name in enumerate(sorted(self.inputs.structures)):
            for c_index, (temperature, field, mode) in enumerate(s.runs()):
                key = condition_key(name, temperature, field, mode)
                self.ctx.conditions[key] = {
                    'structure': name,
                    'temperature_K': temperature,
                    'field': field,
                    'bec_mode': mode,
                }
                for replica in range(s.replicas):
                    seed = s.seed + 10000 * s_index + 100 * c_index + replica
                    runs.append(
                        md_grid.MDRun(
                            key=f'md_{key}_r{replica}',
                            structure=self.inputs.structures[name],
                            settings=s.md_settings(temperature, field, mode, seed),
                            driver=drive,
                        )
                    )
        md_grid.enqueue(self, runs)
        self.report(f'{len(runs)} MD run(s) for {len(self.ctx.conditions)} condition(s)')

    def md_queued(self):
        return md_grid.has_queued(self)

    def run_md(self):
        return ToContext(**md_grid.launch_next(self))

    def inspect_md(self):
        self.ctx.usable, self.ctx.stops = {}, {}
        total = 0
        for key in self.ctx.conditions:
            for replica in range(self.ctx.settings.replicas):
                total += 1
                node = self.ctx[f'md_{key}_r{replica}']
                usable, message = md_grid.outcome(node)
                if usable:
                    self.ctx.usable.setdefault(key, {})[f'r{replica}'] = node.outputs.trajectory
                    if message:
                        self.ctx.stops.setdefault(key, []).append(f'r{replica} {message}')
                        self.report(f'{key} r{replica}: stopped early, analysed: {message}')
                else:
                    self.ctx.failures.append({'key': f'{key}_r{replica}', 'pk': node.pk, 'message': message})
                    self.report(f'{key} r{replica}: MD failed: {message}')
        self.ctx.total_runs = total
        self.ctx.md_failed = len(self.ctx.failures)
        if not self.ctx.usable:
            return self.exit_codes.ERROR_NO_USABLE_MD.format(message=_messages(self.ctx.failures))
        return None

    def analyse(self):
        analysis = self.ctx.settings.analysis_options.to_dict()
        self.ctx.results = {}
        for key, trajectories in sorted(self.ctx.usable.items()):
            condition = {**self.ctx.conditions[key], 'analysis': analysis}
            try:
                outputs = analyse_replicas(
                    condition=orm.Dict(condition), metadata={'call_link_label': f'analyse_{key}'}, **trajectories
                )
            except TransportInputError as exc:
                # a run that stopped early is the usual root cause of too few frames: name its stop
                stops = self.ctx.stops.get(key)
                cause = f' (its MD stopped early: {"; ".join(stops)})' if stops else ''
                self.ctx.failures.append({'key': key, 'message': f'analysis refused: {exc}{cause}'})
                self.report(f'{key}: analysis refused: {exc}{cause}')
                continue
            except Exception as exc:  # noqa: BLE001 - one broken condition must not lose the others
                message = f'analysis failed ({type(exc).__name__}: {exc}); traceback on the excepted calcfunction'
                self.ctx.failures.append({'key': key, 'message': message})
                self.report(f'{key}: {message}')
                continue
            self.out(f'analysis.{key}', outputs['result'])
            self.out(f'msd.{key}', outputs['curves'])
            self.ctx.results[key] = outputs
            for warning in outputs['result']['warnings']:
                self.report(f'{key}: {warning}')
        if not self.ctx.results:
            return self.exit_codes.ERROR_ANALYSIS.format(message=_messages(self.ctx.failures))
        return None

    def report_campaign(self):
        inputs = {}
        for key, outputs in self.ctx.results.items():
            inputs[f'result_{key}'] = outputs['result']
            inputs[f'curves_{key}'] = outputs['curves']
        names = ', '.join(sorted(self.inputs.structures))
        outputs = campaign_report(
            failures=orm.List(self.ctx.failures),
            seed=orm.Int(self.ctx.settings.seed),
            title=orm.Str(f'Transport campaign {self.node.uuid[:8]} ({names})'),
            metadata={'call_link_label': 'campaign_report'},
            **inputs,
        )
        self.out('summary', outputs['summary'])
        self.out('report', outputs['report'])
        for name, node in outputs.items():
            if name.startswith('plot_'):
                self.out(f'plots.{name[len("plot_") :]}', node)
        for warning in outputs['summary']['warnings']:
            self.report(f'warning: {warning}')

    def finalize(self):
        failed = self.ctx.md_failed
        total = self.ctx.total_runs
        if total - failed < self.ctx.settings.min_success_fraction * total - 1e-9:
            return self.exit_codes.ERROR_TOO_MANY_MD_FAILED.format(
                failed=failed, total=total, message=_messages(self.ctx.failures)
            )
        self.report(f'campaign done: {len(self.ctx.results)} condition(s) analysed, {failed} MD run(s) failed')
        return None


def _messages(failures) -> str:
    return '; '.join(f'{f["key"]}: {f["message"]}' for f in failures[:5])
