"""``ValidationWorkChain`` (``ionfield.validation``): a model against DFT physics, before it drives a campaign.

Test-split errors say how well a model fits frames like its training data; they do not say whether it
gets the physics a transport campaign depends on. This workchain compares the model with DFT, with the
labelling protocol the training data came from, on:

- the lattice at zero stress and the elastic constants (Voigt-Reuss-Hill bulk and shear moduli), from
  the stresses of 12 strained cells (the same linear estimate on both sides);
- the Gamma-point phonon frequencies, from phonopy's displaced cells (forces of both sides);
- the Born charges on the DFT zero-stress cell (DFPT there, the model's head on the same cell);
- optionally, force errors on DFT-labelled frames sampled from production MD (``samples``).

The DFT structures are labelled by one ``LabelWorkChain`` (E/F/S), the zero-stress cell by a second one
with DFPT. Each comparison has a ``[warn, fail]`` threshold pair from the protocol; the ``table`` output
lists them all. A failed comparison ends the workchain with ``ERROR_VALIDATION_FAILED`` (naming what
failed) so that a pipeline stops before its campaign, unless ``override`` is set: then it finishes and the
table says it was overridden. Exit codes 800-809.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ionfield.models.validation.settings import ValidationSettings
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import ModelData
from ionfield.workflows.label.workchain import LabelWorkChain
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin

from . import functions


def validate_inputs(inputs, _ctx=None):
    model, structure = inputs.get('model'), inputs.get('structure')
    if model is None or structure is None:
        return None
    unknown = sorted(set(structure.get_symbols_set()) - set(model.species))
    if unknown:
        return f'the structure has species {unknown} that the model {model.pk} does not know ({model.species})'
    return None


class ValidationWorkChain(ProtocolMixin, WorkChain):
    """Compare a model with DFT: zero-stress lattice, elastic constants, Gamma phonons, Born charges, MD frames."""

    protocol_file = ProtocolFile(__package__, 'protocol.yaml')
    #: The process that labels (tests replace it with an analytic potential; its inputs are ``label``'s).
    label_process = LabelWorkChain

    @classmethod
    def get_builder_from_protocol(
        cls,
        structure: orm.StructureData,
        model: ModelData | None,
        *,
        protocol: str | None = None,
        overrides: dict | None = None,
        engine: str = 'qe',
        label_overrides: dict | None = None,
        samples: DatasetData | None = None,
        **engine_arguments,
    ):
        """A builder from the protocol (``settings``, labelling protocol), then ``overrides`` of any of its keys.

        ``engine_arguments`` go to the labelling engine (``pw_code``/``ph_code`` for ``qe``), ``label_overrides``
        to its protocol, as for active learning: the model is checked against the DFT it was trained on.
        """
        values = cls.get_protocol_inputs(protocol, overrides)
        label = LabelWorkChain.get_builder_from_protocol(
            {'structure': structure},
            engine=engine,
            protocol=values['label_protocol'],
            overrides=label_overrides,
            **engine_arguments,
        )
        builder = cls.get_builder()
        builder.structure = structure
        if model is not None:  # a pipeline gives the model once it is trained
            builder.model = model
        builder.settings = orm.Dict(ValidationSettings.from_dict(values['settings']).to_dict())
        builder.label.engine = label.engine
        builder.label[engine] = label[engine]
        builder.label.max_concurrent = orm.Int(values['max_concurrent_labels'])
        if samples is not None:
            builder.samples = samples
        return builder

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'structure',
            valid_type=orm.StructureData,
            help='The cell to validate on (a relaxed or experimental structure with its atoms at force minima).',
        )
        spec.input('model', valid_type=ModelData, help='The model to validate (a committee member that drives MD).')
        spec.input(
            'settings',
            valid_type=orm.Dict,
            default=lambda: orm.Dict(ValidationSettings().to_dict()),
            validator=settings_validator(ValidationSettings, 'validation'),
            help='ValidationSettings: strain, displacement, phonon supercell, relaxation, [warn, fail] thresholds.',
        )
        spec.input(
            'samples',
            valid_type=DatasetData,
            required=False,
            help='DFT-labelled frames sampled from production MD at the campaign conditions: force errors there.',
        )
        spec.input(
            'override',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Finish even when a comparison fails (the table records that it was overridden).',
        )
        spec.expose_inputs(
            LabelWorkChain,
            namespace='label',
            exclude=('structures', 'bec'),
            namespace_options={'help': 'LabelWorkChain inputs (engine and its namespace) of every DFT label.'},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.run_labels,
            cls.inspect_labels,
            cls.dft_side,
            cls.run_relaxed,
            cls.inspect_relaxed,
            cls.model_side,
            cls.compare,
        )
        spec.output('dft', valid_type=orm.Dict, help='DFT: elastic constants, zero-stress lattice, Gamma frequencies.')
        spec.output(
            'model_properties', valid_type=orm.Dict, help='The same numbers from the model, and its relaxation.'
        )
        spec.output(
            'relaxed', valid_type=orm.StructureData, help='The DFT zero-stress cell (Born charges compared there).'
        )
        spec.output('table', valid_type=orm.Dict, help='Every comparison: values, error, [warn, fail], status.')
        spec.output(
            'plot', valid_type=orm.SinglefileData, help='Parity of Gamma frequencies and C_ij; errors vs gates.'
        )
        spec.exit_code(801, 'ERROR_LABELS', message='DFT of the validation structures failed: {message}')
        spec.exit_code(802, 'ERROR_RELAXED', message='DFT (and DFPT) of the zero-stress cell failed: {message}')
        spec.exit_code(803, 'ERROR_MODEL', message='the model could not be evaluated: {message}')
        spec.exit_code(
            810,
            'ERROR_VALIDATION_FAILED',
            message='the model failed validation on: {failures}; the table output has every number (set `override` '
            'to go on regardless)',
        )

    def _label(self, structures: dict, bec: bool, link: str):
        """Submit the labelling process with the ``label`` inputs on ``structures``."""
        inputs = self.exposed_inputs(LabelWorkChain, namespace='label')
        inputs['structures'] = structures
        inputs['bec'] = orm.Bool(bec)
        inputs['metadata'] = {'call_link_label': link}
        return self.submit(self.label_process, **inputs)

    def run_labels(self):
        made = functions.validation_structures(
            self.inputs.structure, self.inputs.settings, metadata={'call_link_label': 'validation_structures'}
        )
        self.ctx.structures = dict(made)
        node = self._label(self.ctx.structures, False, 'label_structures')
        self.report(f'LabelWorkChain<{node.pk}>: {len(self.ctx.structures)} strained and displaced cells (E/F/S)')
        return ToContext(labels=node)

    def inspect_labels(self):
        node = self.ctx.labels
        missing = functions.missing_labels(
            (node.outputs.dataset if 'dataset' in node.outputs else None),
            node.outputs.summary,
            sorted(self.ctx.structures),
        )
        if missing:
            outcomes = node.outputs.summary['structures']
            detail = '; '.join(f'{key}: {outcomes.get(key, {}).get("message", "no frame")}' for key in missing[:5])
            return self.exit_codes.ERROR_LABELS.format(message=f'{len(missing)} structure(s) without E/F/S ({detail})')
        return None

    def dft_side(self):
        node = self.ctx.labels
        outputs = functions.dft_properties(
            self.inputs.structure,
            self.inputs.settings,
            node.outputs.dataset,
            node.outputs.summary,
            metadata={'call_link_label': 'dft_properties'},
        )
        self.ctx.dft = outputs['properties']
        self.ctx.relaxed = outputs['relaxed']
        self.out('dft', self.ctx.dft)
        self.out('relaxed', self.ctx.relaxed)
        if self.ctx.dft['residual_force_max'] > 0.05:
            self.report(
                f'warning: the structure is not at a force minimum (largest DFT force '
                f'{self.ctx.dft["residual_force_max"]:.3f} eV/Å); phonons are taken about it'
            )

    def run_relaxed(self):
        """Label the zero-stress cell: its stress refines the lattice by a second Newton step, and with a Born-charge
        head its DFPT Z* are what the model's are compared with."""
        with_bec = self.inputs.model.has_bec
        node = self._label({'relaxed': self.ctx.relaxed}, with_bec, 'label_relaxed')
        self.report(f'LabelWorkChain<{node.pk}>: the zero-stress cell' + (' with DFPT' if with_bec else ''))
        return ToContext(relaxed_labels=node)

    def inspect_relaxed(self):
        node = self.ctx.relaxed_labels
        dataset = node.outputs.dataset if 'dataset' in node.outputs else None
        frame = dataset.get_dataset()[0] if dataset is not None else None
        if frame is None or not frame.has_stress:
            outcome = node.outputs.summary['structures'].get('relaxed', {})
            message = outcome.get('message') or node.exit_message or 'no frame'
            return self.exit_codes.ERROR_RELAXED.format(message=message)
        if self.inputs.model.has_bec and not frame.has_born_charges:
            outcome = node.outputs.summary['structures'].get('relaxed', {})
            return self.exit_codes.ERROR_RELAXED.format(message=f'no Born charges: {outcome.get("message")}')
        return None

    def model_side(self):
        labelled = {f'structure_{key}': node for key, node in self.ctx.structures.items()}
        labelled['relaxed'] = self.ctx.relaxed
        if 'samples' in self.inputs:
            labelled['samples'] = self.inputs.samples
        try:
            self.ctx.model = functions.model_properties(
                self.inputs.model,
                self.inputs.structure,
                self.inputs.settings,
                metadata={'call_link_label': 'model_properties'},
                **labelled,
            )
        except Exception as exception:  # noqa: BLE001 - the excepted calcfunction keeps the traceback
            return self.exit_codes.ERROR_MODEL.format(message=f'{type(exception).__name__}: {exception}')
        self.out('model_properties', self.ctx.model)
        return None

    def compare(self):
        outputs = functions.validation_table(
            self.ctx.dft,
            self.ctx.model,
            self.inputs.settings,
            self.inputs.override,
            self.ctx.relaxed_labels.outputs.dataset,
            metadata={'call_link_label': 'validation_table'},
        )
        table = outputs['table']
        self.out('plot', outputs['plot'])
        for row in table['rows']:
            self.report(f'{row["status"]:>4}  {describe_row(row)}')
        self.out('table', table)
        if table['passed']:
            return None
        failures = ', '.join(table['failures'])
        if table['overridden']:
            self.report(f'validation FAILED on {failures}; going on because `override` is set')
            return None
        return self.exit_codes.ERROR_VALIDATION_FAILED.format(failures=failures)


def describe_row(row: dict) -> str:
    """One comparison in words: ``a: DFT 3.65, model 3.66 Å (error 0.003; warn 0.01, fail 0.02)``."""
    values = '' if row['dft'] is None else f'DFT {row["dft"]:.4g}, model {row["model"]:.4g} {row["unit"]} '
    unit = '' if row['dft'] is not None or row.get('relative') else f' {row["unit"]}'
    return f'{row["quantity"]}: {values}(error {row["error"]:.3g}{unit}; warn {row["warn"]:g}, fail {row["fail"]:g})'
