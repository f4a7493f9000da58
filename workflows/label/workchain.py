"""``LabelWorkChain`` (``ionfield.label``): structures in, one ``DatasetData`` of labelled frames out.

Every structure is first checked (``check_structure``: overlaps, periodicity, an empty or degenerate cell);
a rejected one is reported with the reason and costs no DFT. The others are labelled in parallel, each by
the engine's frame workchain (:data:`ENGINES`), which runs the SCF and, with ``bec``, the DFPT. The batch
never stops at the first failure: every structure ends up in the ``summary`` output as ``labelled``
(all labels asked for), ``partial`` (energy, forces and stress kept, no Born charges: a metal or a DFPT
failure), ``failed`` or ``rejected``, with its exit code and message, and every frame that was computed is
in ``dataset``. The workchain then fails (``ERROR_TOO_FEW_LABELLED``) only if fewer than
``min_success_fraction`` of the structures gave a frame, and even then the dataset is output first.

Frames whose Born charges break the acoustic sum rule by more than ``asr_threshold`` carry the flag
``asr_violation``; the raw tensors are stored and the corrected ones derived on demand.
"""

from __future__ import annotations

import math

from aiida import orm
from aiida.engine import WorkChain, calcfunction, while_
from aiida.plugins import WorkflowFactory

from ionfield.models.data import Dataset, Frame, asr_violation
from ionfield.models.keys import ASR_FLAG, SOURCE_UUID, TOT_CHARGE_FLAG
from ionfield.models.structures.checks import analyse_structure
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.exit_codes import exit_code_name
from ionfield.workflows.structures.check import PROBLEM_EXIT_CODES, StructureCheckWorkChain

from .qe import QeFrameWorkChain

__all__ = ('ENGINES', 'LabelWorkChain', 'assemble_dataset')

ENGINES: dict[str, type] = {'qe': QeFrameWorkChain}
"""Engine name -> frame workchain class (see ``ionfield.workflows.label.frame`` for what they promise)."""

try:  # the VASP engine needs aiida-vasp, a dependency, but keep the QE path alive if it is broken
    ENGINES['vasp'] = WorkflowFactory('ionfield.label.vasp')
except Exception:  # noqa: BLE001 - entry point missing or aiida-vasp not importable
    pass

LABELLED, PARTIAL, FAILED, REJECTED = 'labelled', 'partial', 'failed', 'rejected'
PARTIAL_FLAGS = {'ERROR_NO_GAP': 'no_gap', 'ERROR_DFPT_FAILED': 'dfpt_failed'}
"""Frame exit codes (by name) after which the frame (E, F, S) was still emitted, and the flag it gets."""


@calcfunction
def assemble_dataset(asr_threshold: orm.Float, outcomes: orm.Dict, **nodes) -> dict:
    """``dataset`` (frames in the order of ``outcomes``) and ``summary`` from ``structure_<key>``/``frame_<key>``.

    ``outcomes`` maps each structure key to its status, message, flags and process. Frames over the
    ASR threshold get :data:`ASR_FLAG`, and the per-frame violation is added to the summary.
    """
    frames = []
    summary = {}
    for key, outcome in outcomes.get_dict().items():
        outcome = dict(outcome)
        frame_node = nodes.get(f'frame_{key}')
        if frame_node is not None:
            structure = nodes[f'structure_{key}'].get_ase()
            charge = frame_node.base.attributes.get(TOT_CHARGE_FLAG, None)
            if charge is not None:
                outcome['flags'] = [*outcome.get('flags', []), f'{TOT_CHARGE_FLAG}={charge:g}']
            frame = Frame(
                numbers=structure.numbers,
                positions=structure.positions,
                cell=structure.cell.array,
                pbc=structure.pbc,
                flags=frozenset(outcome.get('flags', [])),
                source_uuid=frame_node.base.attributes.get(SOURCE_UUID, ''),
                **{name: frame_node.get_array(name) for name in frame_node.get_arraynames()},
            )
            violation = asr_violation(frame.born_charges, charge or 0.0)
            if violation > asr_threshold.value:
                frame = frame.replace(flags=frame.flags | {ASR_FLAG})
            outcome['asr_violation'] = None if math.isnan(violation) else violation
            outcome['frame_index'] = len(frames)
            frames.append(frame)
        summary[key] = outcome
    counts = {
        status: sum(o['status'] == status for o in summary.values()) for status in (LABELLED, PARTIAL, FAILED, REJECTED)
    }
    result = {'summary': orm.Dict({'structures': summary, 'counts': counts})}
    if frames:
        result['dataset'] = DatasetData(Dataset(frames))
    return result


class LabelWorkChain(WorkChain):
    """Label a batch of structures with DFT (energy, forces, stress) and DFPT (Born charges, eps_inf)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='The structures to label, by a key of your choice (the key names the structure in every report).',
        )
        spec.input(
            'engine',
            valid_type=orm.Str,
            default=lambda: orm.Str('qe'),
            validator=_validate_engine,
            help=f'DFT engine: one of {", ".join(sorted(ENGINES))}; its inputs go in the namespace of that name.',
        )
        spec.input(
            'bec',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            help='Compute Born effective charges and eps_inf (DFPT) after the SCF of each structure.',
        )
        spec.input(
            'min_distance',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            help='Atoms closer than this (Å) make a structure `rejected` before any DFT is run.',
        )
        spec.input(
            'asr_threshold',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.05),
            help='Frames whose Born charges violate the acoustic sum rule by more than this (e) are flagged.',
        )
        spec.input(
            'min_success_fraction',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            help='The workchain succeeds when at least this fraction of the structures gave a frame.',
        )
        for name, engine in ENGINES.items():
            spec.expose_inputs(
                engine,
                namespace=name,
                exclude=('structure', 'bec'),
                namespace_options={
                    'required': False,
                    'populate_defaults': False,
                    'help': f'Inputs of the `{name}` engine ({engine.__name__}), shared by all structures.',
                },
            )
        spec.inputs.validator = _validate_inputs
        spec.input(
            'max_concurrent',
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            help='Label at most this many structures at a time (0: all at once). On a laptop, where every '
            'calculation already uses all cores, 1 avoids oversubscribing them.',
        )
        spec.outline(cls.check_structures, while_(cls.has_pending)(cls.run_frames), cls.collect)
        spec.output('dataset', valid_type=DatasetData, required=False, help='Every frame computed, with provenance.')
        spec.output('summary', valid_type=orm.Dict, help='Per structure: status, exit code, message, ASR violation.')
        spec.exit_code(
            310, 'ERROR_NO_STRUCTURES', message='No structures were given: pass at least one in `structures`.'
        )
        spec.exit_code(
            311,
            'ERROR_TOO_FEW_LABELLED',
            message='Only {done} of {total} structures gave a frame (less than {fraction:.0%}); the dataset holds '
            'them. Not labelled: {failures}.',
        )
        spec.exit_code(
            312, 'ERROR_NOTHING_LABELLED', message='None of the {total} structures could be labelled: {failures}.'
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        structures: dict[str, orm.StructureData],
        engine: str = 'qe',
        protocol: str | None = None,
        bec: bool = True,
        overrides: dict | None = None,
        options: dict | None = None,
        **engine_arguments,
    ):
        """A builder for ``structures`` with the engine's inputs from ``protocol`` and ``overrides``.

        ``engine_arguments`` go to the engine's ``get_inputs_from_protocol`` (for ``qe``: ``pw_code``,
        ``ph_code``; for ``vasp``: ``code``, ``potential_family``, ``potential_mapping``).
        """
        if engine not in ENGINES:
            raise ValueError(f'unknown engine `{engine}`; known: {", ".join(sorted(ENGINES))}')
        builder = cls.get_builder()
        builder.structures = dict(structures)
        builder.engine = orm.Str(engine)
        builder.bec = orm.Bool(bec)
        inputs = ENGINES[engine].get_inputs_from_protocol(
            protocol=protocol, bec=bec, overrides=overrides, options=options, **engine_arguments
        )
        inputs.pop('bec', None)
        builder[engine] = inputs
        return builder

    # --- steps ----------------------------------------------------------------------------------------

    def check_structures(self):
        """Reject structures that cannot be a bulk crystal; the rest go on."""
        structures = dict(self.inputs.get('structures', {}))
        if not structures:
            return self.exit_codes.ERROR_NO_STRUCTURES
        self.ctx.structure_keys = sorted(structures)
        self.ctx.outcomes = {}
        self.ctx.valid = []
        for key in self.ctx.structure_keys:
            structure = structures[key]
            report = analyse_structure(structure.get_ase(), min_distance=self.inputs.min_distance.value)
            if report.problems:
                message = '; '.join(report.problems)
                self.report(f'{key} (StructureData<{structure.pk}>) rejected: {message}')
                self.ctx.outcomes[key] = _outcome(
                    REJECTED, structure, message=message, exit_status=_rejection_status(report)
                )
            else:
                self.ctx.valid.append(key)
        self.ctx.pending = list(self.ctx.valid)
        return None

    def has_pending(self):
        return bool(self.ctx.pending)

    def run_frames(self):
        """Launch the next ``max_concurrent`` structures (all when 0); the loop waits for them to finish."""
        engine_name = self.inputs.engine.value
        engine = ENGINES[engine_name]
        shared = dict(self.inputs[engine_name])  # the exposed namespace, shared by every structure
        size = self.inputs.max_concurrent.value or len(self.ctx.pending)
        chunk, self.ctx.pending = self.ctx.pending[:size], self.ctx.pending[size:]
        for key in chunk:
            structure = self.inputs.structures[key]
            inputs = {
                **shared,
                'structure': structure,
                'bec': self.inputs.bec,
                'metadata': {'call_link_label': f'label_{key}', 'label': key},
            }
            node = self.submit(engine, **inputs)
            self.report(f'{key}: launched {engine.__name__}<{node.pk}>')
            self.to_context(**{f'frame_{key}': node})

    def collect(self):
        nodes = {}
        outcomes = dict(self.ctx.outcomes)
        for key in self.ctx.valid:
            structure = self.inputs.structures[key]
            node = self.ctx[f'frame_{key}']
            has_frame = 'frame' in node.outputs
            if node.is_finished_ok:
                status, flags = LABELLED, []
            elif has_frame and exit_code_name(node) in PARTIAL_FLAGS:
                status, flags = PARTIAL, [PARTIAL_FLAGS[exit_code_name(node)]]
            else:
                status, flags = FAILED, []
            message = node.exit_message or ''
            if status != LABELLED:
                self.report(f'{key}: {status}, [{node.exit_status}] {message}')
            outcomes[key] = _outcome(status, structure, node=node, message=message, flags=flags)
            if has_frame:
                nodes[f'frame_{key}'] = node.outputs.frame
                nodes[f'structure_{key}'] = structure
        ordered = {key: outcomes[key] for key in self.ctx.structure_keys}
        results = assemble_dataset(
            asr_threshold=self.inputs.asr_threshold,
            outcomes=orm.Dict(ordered),
            metadata={'call_link_label': 'assemble_dataset'},
            **nodes,
        )
        self.out('summary', results['summary'])
        if 'dataset' in results:
            self.out('dataset', results['dataset'])
        total = len(self.ctx.structure_keys)
        done = sum(outcome['status'] in (LABELLED, PARTIAL) for outcome in ordered.values())
        failures = '; '.join(
            f'{key}: {outcome["message"]}'
            for key, outcome in ordered.items()
            if outcome['status'] in (FAILED, REJECTED)
        )
        self.report(f'{done} of {total} structures labelled ({results["summary"]["counts"]})')
        if done == 0:
            return self.exit_codes.ERROR_NOTHING_LABELLED.format(total=total, failures=failures)
        fraction = self.inputs.min_success_fraction.value
        if done < fraction * total - 1e-9:
            return self.exit_codes.ERROR_TOO_FEW_LABELLED.format(
                done=done, total=total, fraction=fraction, failures=failures
            )
        return None


def _outcome(status, structure, node=None, message='', exit_status=None, flags=()):
    return {
        'status': status,
        'structure_uuid': structure.uuid,
        'formula': structure.get_formula(),
        'process_uuid': node.uuid if node is not None else None,
        'process_pk': node.pk if node is not None else None,
        'exit_status': node.exit_status if node is not None else exit_status,
        'message': message,
        'flags': list(flags),
    }


def _rejection_status(report) -> int:
    """The exit status ``StructureCheckWorkChain`` gives the first problem of ``report`` (301-304)."""
    return StructureCheckWorkChain.exit_codes[PROBLEM_EXIT_CODES[report.problem_kinds[0]]].status


def _validate_engine(value, _):
    if value is not None and value.value not in ENGINES:
        return f'unknown engine `{value.value}`; known: {", ".join(sorted(ENGINES))}'
    return None


def _validate_inputs(value, _):
    engine = value.get('engine')
    name = engine.value if engine is not None else 'qe'
    if name in ENGINES and not value.get(name):
        return f'engine `{name}` needs its inputs in the `{name}` namespace (see `get_builder_from_protocol`)'
    return None
