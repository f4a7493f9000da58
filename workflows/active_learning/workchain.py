"""``ActiveLearningWorkChain`` (``ionfield.active_learning``): label -> learn -> explore -> select, until converged.

1. **Initial data** (unless a ``dataset`` is given): the seed structures plus seeded rattles and
   strains, labelled by ``LabelWorkChain`` (E/F/S for all, Born charges for ``initial_bec_fraction``).
2. **Train** a ``CommitteeWorkChain`` on the running dataset, warm-started from the previous
   iteration's committee.
3. **Explore** (:mod:`ionfield.workflows.md.grid`): one ``MDWorkChain`` per structure x temperature x field,
   the committee monitoring every sampled frame, each run stopping early above ``md_stop_factor`` x the upper
   trust level.
4. **Select** (:func:`~.functions.select_frames`): accurate / candidate / failed by the trust levels,
   then at most ``max_selected`` diverse candidates (farthest-point, seeded).
5. **Decide** (:class:`~ionfield.models.active_learning.convergence.ConvergenceCriterion`): converged when the
   accurate share stayed >= ``converged_fraction`` for ``converged_iterations`` iterations, else stop
   at ``max_iterations``, a spent label budget, or when nothing is left to label.
6. **Label** the selection (Born charges for ``bec_fraction`` of it), merge it into the dataset and
   **calibrate**: committee deviation vs the true error on the new labels (adapting the levels with
   ``adapt_trust``).

Every finished step is an output at once (``datasets.iter_NN``, ``committees.iter_NN``,
``iterations.iter_NN``), so a run that fails later loses nothing, and ``ionfield al restart``
continues from any finished iteration (``dataset`` + ``parent_committee`` + ``previous_history``).
Failed MD or DFT tasks are recorded with their reason; an iteration goes on while the share of
successes stays above ``min_md_success_fraction`` / ``min_label_success_fraction``.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from ionfield.models.active_learning.convergence import CONTINUE, MAX_ITERATIONS, ConvergenceCriterion
from ionfield.models.active_learning.settings import ActiveLearningInputError, ActiveLearningSettings
from ionfield.models.active_learning.trust import TrustLevels
from ionfield.models.md.settings import MDInputError, MDSettings
from ionfield.models.structures.checks import analyse_structure
from ionfield.models.train.settings import TrainingSettings
from ionfield.plugins.calculations.validation import settings_validator
from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import CommitteeData
from ionfield.workflows.label.workchain import LabelWorkChain
from ionfield.workflows.md import grid as md_grid
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin
from ionfield.workflows.structures.functions import random_strains, rattle_structure
from ionfield.workflows.train.committee import CommitteeWorkChain

from .functions import calibrate_committee, merge_datasets, select_frames

__all__ = ('ActiveLearningWorkChain',)


def _settings(inputs) -> ActiveLearningSettings:
    return ActiveLearningSettings.from_dict(inputs['settings'].get_dict() if 'settings' in inputs else {})


validate_settings = settings_validator(ActiveLearningSettings, 'active-learning')


def labelling_problem(structure: orm.StructureData, label_inputs) -> str | None:
    """Why the labelling engine cannot label ``structure`` (None when it can), checked before any DFT."""
    report = analyse_structure(structure.get_ase())
    if report.problems:
        return '; '.join(report.problems)
    engine = label_inputs['engine'].value if 'engine' in label_inputs else 'qe'
    elements = set(structure.get_symbols_set())
    if engine == 'qe' and 'qe' in label_inputs and 'pseudo_family' in label_inputs['qe']:
        family_label = label_inputs['qe']['pseudo_family'].value
        try:
            family = orm.Group.collection.get(label=family_label)
        except Exception:  # noqa: BLE001 - not existing, or not unique
            return f'pseudo family `{family_label}` is not installed (`ionfield setup`)'
        missing = sorted(elements - set(getattr(family, 'elements', elements)))
        if missing:
            return f'pseudo family `{family_label}` has no pseudopotential for {missing}'
    if engine == 'vasp' and 'vasp' in label_inputs and 'potential_mapping' in label_inputs['vasp']:
        missing = sorted(elements - set(label_inputs['vasp']['potential_mapping'].get_dict()))
        if missing:
            return f'potential_mapping has no POTCAR for {missing}'
    return None


def validate_inputs(inputs, _ctx=None):
    """Everything that can be known wrong before anything runs."""
    try:
        settings = _settings(inputs)
    except ActiveLearningInputError as exc:
        return str(exc)
    structures = dict(inputs.get('structures', {}))
    if not structures:
        return 'no seed structures: give at least one in `structures` (MD starts from them)'
    label_inputs = inputs.get('label', {})
    if 'dataset' not in inputs:
        for key, structure in sorted(structures.items()):
            problem = labelling_problem(structure, label_inputs)
            if problem:
                return f'seed structure `{key}` cannot be labelled: {problem}'
    training = inputs['committee']['settings'].get_dict() if 'settings' in inputs.get('committee', {}) else {}
    if training.get('bec', True) and 'dataset' not in inputs and settings.initial_bec_fraction == 0:
        return 'the committee learns Born charges but initial_bec_fraction is 0: no initial frame would have them'
    if any(any(field) for field in settings.fields) and training.get('bec') is False:
        return 'the exploration grid has non-zero fields but the committee is trained without Born charges (bec)'
    try:
        for temperature, field in settings.grid:
            MDSettings.from_dict(_md_settings(settings, settings.trust, temperature, field, 0))
    except MDInputError as exc:
        return f'the exploration MD settings are invalid: {exc}'
    if 'dataset' in inputs:
        known = set(inputs['dataset'].species)
        for key, structure in sorted(structures.items()):
            unknown = sorted(set(structure.get_symbols_set()) - known)
            if unknown:
                return f'seed structure `{key}` has species {unknown} that the dataset has no frame of'
    return None


def _md_settings(settings: ActiveLearningSettings, trust: TrustLevels, temperature, field, seed: int) -> dict:
    values = {
        'steps': settings.md_steps,
        'timestep_fs': settings.md_timestep_fs,
        'temperature_K': float(temperature),
        'field': list(field),
        'seed': seed,
        'trajectory_every': settings.md_sample_every,
        'monitor_every': settings.md_sample_every,
        'log_every': settings.md_sample_every,
        'max_force_deviation': settings.md_stop_factor * trust.force_hi,
        **settings.md_overrides,
    }
    if trust.uses_bec:
        values['max_bec_deviation'] = settings.md_stop_factor * trust.bec_hi
    return values


def _span(nodes) -> float:
    """Wall seconds from the first node's creation to the last one's last change."""
    nodes = [node for node in nodes if node is not None]
    if not nodes:
        return 0.0
    return max(n.mtime for n in nodes).timestamp() - min(n.ctime for n in nodes).timestamp()


class ActiveLearningWorkChain(ProtocolMixin, WorkChain):
    """Close the loop label -> learn -> explore -> select until the committee is trusted everywhere explored."""

    protocol_file = ProtocolFile(__package__, 'protocol.yaml')

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='Seed structures by key: the initial data is made from them and every MD run starts from them.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            validator=validate_settings,
            help='ActiveLearningSettings as a dict (grid, trust levels, cap, budget, stopping); defaults fill in.',
        )
        spec.input(
            'dataset',
            valid_type=DatasetData,
            required=False,
            help='Start from these labelled frames instead of labelling the seed structures (also: restarts).',
        )
        spec.input(
            'parent_committee',
            valid_type=CommitteeData,
            required=False,
            help='Warm-start the first committee from this one (also: restarts).',
        )
        spec.input(
            'previous_history',
            valid_type=orm.List,
            required=False,
            help='Iterations already done (restarts): numbering, convergence streak and trust levels go on from them.',
        )
        spec.expose_inputs(
            LabelWorkChain,
            namespace='label',
            exclude=('structures', 'bec'),
            namespace_options={'help': 'LabelWorkChain inputs (engine and its namespace) shared by every labelling.'},
        )
        spec.expose_inputs(
            CommitteeWorkChain,
            namespace='committee',
            exclude=('member.train.dataset', 'parent_committee'),
            namespace_options={'help': 'CommitteeWorkChain inputs (code, size, training settings) of every training.'},
        )
        md_grid.define_inputs(spec, 'exploration')
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.needs_initial_data)(
                cls.make_initial_structures,
                cls.prepare_labels,
                while_(cls.labels_pending)(cls.run_labels),
                cls.inspect_labels,
            ),
            while_(cls.should_iterate)(
                cls.train,
                cls.inspect_train,
                cls.explore,
                while_(cls.md_queued)(cls.run_md),
                cls.inspect_explore,
                cls.select,
                if_(cls.should_label)(
                    cls.prepare_labels, while_(cls.labels_pending)(cls.run_labels), cls.inspect_labels, cls.calibrate
                ),
                cls.finish_iteration,
            ),
            if_(cls.needs_final_training)(cls.train, cls.inspect_train),
            cls.results,
        )
        spec.output(
            'dataset', valid_type=DatasetData, required=False, help='Every frame labelled, initial data included.'
        )
        spec.output('committee', valid_type=CommitteeData, required=False, help='The last committee trained.')
        spec.output('history', valid_type=orm.List, required=False, help='One dict per iteration, and the stop reason.')
        spec.output_namespace(
            'datasets',
            valid_type=DatasetData,
            dynamic=True,
            help='The dataset after the initial data and each labelling.',
        )
        spec.output_namespace(
            'committees', valid_type=CommitteeData, dynamic=True, help='The committee trained in each iteration.'
        )
        spec.output_namespace(
            'iterations', valid_type=orm.Dict, dynamic=True, help='Per finished iteration: shares, errors, timings.'
        )
        spec.exit_code(601, 'ERROR_INITIAL_LABELLING', message='the initial data could not be labelled: {message}')
        spec.exit_code(
            602,
            'ERROR_LABELLING',
            message='iteration {iteration}: only {done} of {total} frames were labelled (bound {bound:.0%}); every '
            'finished label is in `datasets`: {message}',
        )
        spec.exit_code(603, 'ERROR_TRAINING', message='iteration {iteration}: the committee failed: {message}')
        spec.exit_code(
            604,
            'ERROR_EXPLORATION',
            message='iteration {iteration}: only {done} of {total} MD runs gave frames (bound {bound:.0%}): {message}',
        )
        spec.exit_code(605, 'ERROR_SELECTION', message='iteration {iteration}: the selection failed: {message}')

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
        **engine_arguments,
    ):
        """A builder from the protocol (``settings``, ``training``, committee size, labelling protocol), then
        ``overrides`` of any of its keys; the labelling engine's own protocol is ``label_protocol``.

        ``engine_arguments`` go to the engine (``pw_code``/``ph_code`` for ``qe``; ``code``,
        ``potential_family``, ``potential_mapping`` for ``vasp``); ``label_overrides`` to its protocol.
        """
        values = cls.get_protocol_inputs(protocol, overrides)
        settings = ActiveLearningSettings.from_dict(values['settings']).to_dict()
        label = LabelWorkChain.get_builder_from_protocol(
            structures,
            engine=engine,
            protocol=values['label_protocol'],
            overrides=label_overrides,
            **engine_arguments,
        )
        builder = cls.get_builder()
        builder.structures = dict(structures)
        builder.settings = orm.Dict(settings)
        builder.label.engine = label.engine
        builder.label[engine] = label[engine]
        builder.label.max_concurrent = orm.Int(values['max_concurrent_labels'])
        builder.committee.member.train.code = train_code
        builder.committee.settings = orm.Dict(TrainingSettings.from_dict(values['training']).to_dict())
        builder.committee.size = orm.Int(values['committee_size'])
        builder.committee.base_seed = orm.Int(settings['seed'])
        builder.md.code = md_code
        builder.md.max_concurrent = orm.Int(values['max_concurrent_md'])
        return builder

    # --- set-up ---------------------------------------------------------------------------------------

    def setup(self):
        settings = _settings(self.inputs)
        self.ctx.settings = settings
        history = list(self.inputs.previous_history.get_list()) if 'previous_history' in self.inputs else []
        self.ctx.history = history
        self.ctx.iteration = history[-1]['iteration'] if history else 0
        trust = history[-1].get('trust_next') if history else None
        self.ctx.trust = TrustLevels(**trust) if trust else settings.trust
        self.ctx.criterion = ConvergenceCriterion(
            fraction=settings.converged_fraction,
            patience=settings.converged_iterations,
            max_iterations=settings.max_iterations,
            max_labels=settings.max_labels,
        )
        self.ctx.labels_used = history[-1]['labels_used'] if history else 0
        self.ctx.dataset = self.inputs.get('dataset')
        self.ctx.committee = self.inputs.get('parent_committee')
        self.ctx.trained_on = None  # uuid of the dataset the current committee was trained on
        self.ctx.stop = None
        self.ctx.current = {}
        self.ctx.label_nodes = {}
        if self.ctx.iteration >= settings.max_iterations:
            self.ctx.stop = (MAX_ITERATIONS, f'{self.ctx.iteration} iteration(s) already done (max_iterations)')
        self.report(
            f'start: iteration {self.ctx.iteration}, trust {self.ctx.trust.to_dict()}, '
            f'{len(self.inputs.structures)} seed structure(s), grid {len(settings.grid)} (T, E) point(s)'
        )

    def needs_initial_data(self):
        return self.ctx.dataset is None

    def make_initial_structures(self):
        """Seed structures + seeded rattles and strains of each (calcfunctions: provenance of every frame)."""
        s = self.ctx.settings
        structures = {}
        for index, key in enumerate(sorted(self.inputs.structures)):
            structure = self.inputs.structures[key]
            structures[f'{key}_seed'] = structure
            seed = orm.Int(s.seed + index)
            if s.initial_rattles:
                rattled = rattle_structure(structure, orm.Float(s.rattle_stdev), seed, orm.Int(s.initial_rattles))
                structures.update({f'{key}_{name}': node for name, node in rattled.items()})
            if s.initial_strains:
                strained = random_strains(structure, orm.Float(s.max_strain), seed, orm.Int(s.initial_strains))
                structures.update({f'{key}_{name}': node for name, node in strained.items() if name != 'strains'})
        if s.max_labels is not None and len(structures) > s.max_labels:
            keep = sorted(structures)[: s.max_labels]
            self.report(f'initial data capped at the label budget: {len(keep)} of {len(structures)} structures')
            structures = {key: structures[key] for key in keep}
        self.ctx.to_label = structures
        self.ctx.label_stage = 'initial'

    # --- labelling ------------------------------------------------------------------------------------

    def prepare_labels(self):
        """Split the frames to label: Born charges for a share of them, E/F/S only for the rest.

        The share is ``initial_bec_fraction`` for the initial data, where the seed structures go first
        (the unperturbed crystal is the reference every Z* is compared with, and its symmetry makes its
        DFPT cheap), and ``bec_fraction`` for a selection; any other pick is drawn with the seed. Frames of
        more than ``bec_max_atoms`` atoms are never picked (their Born charges come from the small cells).
        """
        s = self.ctx.settings
        keys = sorted(self.ctx.to_label)
        limit = s.bec_max_atoms
        eligible = [key for key in keys if limit is None or len(self.ctx.to_label[key].sites) <= limit]
        fraction = s.initial_bec_fraction if self.ctx.label_stage == 'initial' else s.bec_fraction
        n_bec = int(round(fraction * len(keys)))
        if fraction > 0 and eligible:
            n_bec = max(n_bec, 1)
        rng = np.random.default_rng([s.seed, self.ctx.iteration, 7])
        ranked = sorted(rng.permutation(eligible).tolist(), key=lambda key: not key.endswith('_seed'))
        bec_keys = set(ranked[:n_bec])
        self.ctx.label_nodes, self.ctx.label_groups = {}, {}
        self.ctx.current['labelled'] = True
        for group, with_bec in (('bec', True), ('plain', False)):
            chosen = [key for key in keys if (key in bec_keys) == with_bec]
            if chosen:
                self.ctx.label_groups[group] = chosen
        self.ctx.label_queue = list(self.ctx.label_groups)

    def labels_pending(self):
        return bool(self.ctx.label_queue)

    def run_labels(self):
        """Submit the next group, or all of them when ``label.max_concurrent`` is 0 (no limit)."""
        sequential = self.inputs.label.max_concurrent.value > 0
        groups = self.ctx.label_queue[:1] if sequential else list(self.ctx.label_queue)
        self.ctx.label_queue = self.ctx.label_queue[len(groups) :]
        for group in groups:
            chosen, with_bec = self.ctx.label_groups[group], group == 'bec'
            inputs = self.exposed_inputs(LabelWorkChain, namespace='label')
            inputs['structures'] = {key: self.ctx.to_label[key] for key in chosen}
            inputs['bec'] = orm.Bool(with_bec)
            inputs['metadata'] = {'call_link_label': f'label_{self.ctx.label_stage}_{group}'}
            node = self.submit(LabelWorkChain, **inputs)
            self.ctx.label_nodes[group] = node.pk
            self.report(
                f'{self.ctx.label_stage}: LabelWorkChain<{node.pk}> labels {len(chosen)} frame(s), bec={with_bec}'
            )
            self.to_context(**{f'label_{group}': node})

    def inspect_labels(self):
        """Merge every frame computed into the dataset (even when the batch failed), then judge the batch."""
        new, order, failures, done, total = {}, [], [], 0, 0
        for group in ('bec', 'plain'):
            if group not in self.ctx.label_nodes:
                continue
            node = self.ctx[f'label_{group}']
            summary = node.outputs.summary.get_dict()['structures'] if 'summary' in node.outputs else {}
            total += len(self.ctx.label_groups[group])
            if 'dataset' in node.outputs:
                new[group] = node.outputs.dataset
                indexed = sorted(
                    (o['frame_index'], key) for key, o in summary.items() if o.get('frame_index') is not None
                )
                order += [key for _, key in indexed]
            for key, outcome in summary.items():
                if outcome['status'] in ('labelled', 'partial'):
                    done += 1
                else:
                    failures.append(f'{key}: {outcome["status"]} [{outcome["exit_status"]}] {outcome["message"]}')
            if not summary:
                failures.append(f'LabelWorkChain<{node.pk}> excepted: [{node.exit_status}] {node.exit_message}')
        self.ctx.labels_used += total
        self.ctx.new_labels = None
        if new:
            merged_new = merge_datasets(**new) if len(new) > 1 else next(iter(new.values()))
            self.ctx.new_labels = merged_new
            self.ctx.new_label_order = order
            parts = {'a_dataset': self.ctx.dataset, 'b_new': merged_new} if self.ctx.dataset is not None else None
            self.ctx.dataset = merge_datasets(**parts) if parts else merged_new
            stage = self.ctx.label_stage
            self.out(f'datasets.{stage}', self.ctx.dataset)
        for failure in failures:
            self.report(f'{self.ctx.label_stage}: not labelled: {failure}')
        self.ctx.current['labels'] = {'asked': total, 'done': done, 'failed': failures}
        message = '; '.join(failures[:5]) or 'no frame came back'
        if self.ctx.label_stage == 'initial':
            if self.ctx.dataset is None:
                return self.exit_codes.ERROR_INITIAL_LABELLING.format(message=message)
            self.report(f'initial data: {done} of {total} frames labelled, dataset {self.ctx.dataset.n_frames} frames')
            return None
        bound = self.ctx.settings.min_label_success_fraction
        if total and done < bound * total - 1e-9:
            return self.exit_codes.ERROR_LABELLING.format(
                iteration=self.ctx.iteration, done=done, total=total, bound=bound, message=message
            )
        return None

    # --- the loop -------------------------------------------------------------------------------------

    def should_iterate(self):
        return self.ctx.stop is None

    def train(self):
        inputs = self.exposed_inputs(CommitteeWorkChain, namespace='committee')
        inputs['member']['train']['dataset'] = self.ctx.dataset
        if self.ctx.committee is not None and self.ctx.settings.warm_start:
            same_species = set(self.ctx.committee.species) == set(self.ctx.dataset.species)
            if same_species and self.ctx.committee.size >= inputs.get('size', orm.Int(4)).value:
                inputs['parent_committee'] = self.ctx.committee
        final = self.ctx.stop is not None
        label = 'train_final' if final else f'train_iter_{self.ctx.iteration + 1:02d}'
        inputs['metadata'] = {'call_link_label': label}
        node = self.submit(CommitteeWorkChain, **inputs)
        warm = 'warm start' if 'parent_committee' in inputs else 'from scratch'
        self.report(f'{label}: CommitteeWorkChain<{node.pk}> on {self.ctx.dataset.n_frames} frames ({warm})')
        if not final:
            self.ctx.iteration += 1
            self.ctx.current = {'iteration': self.ctx.iteration}
        return ToContext(training=node)

    def inspect_train(self):
        node = self.ctx.training
        if not node.is_finished_ok or 'committee' not in node.outputs:
            return self.exit_codes.ERROR_TRAINING.format(
                iteration=self.ctx.iteration,
                message=f'CommitteeWorkChain<{node.pk}> [{node.exit_status}] {node.exit_message}',
            )
        self.ctx.committee = node.outputs.committee
        self.ctx.trained_on = self.ctx.dataset.uuid
        if self.ctx.stop is None:
            self.out(f'committees.iter_{self.ctx.iteration:02d}', self.ctx.committee)
            self.ctx.current['train_s'] = _span([node])
        return None

    def explore(self):
        s = self.ctx.settings
        runs = []
        self.ctx.md_tasks = {}
        for index, key in enumerate(sorted(self.inputs.structures)):
            for point, (temperature, field) in enumerate(s.grid):
                task = f'{key}_T{temperature:g}_E{point % len(s.fields)}'.replace('.', 'p').replace('-', 'm')
                seed = s.seed + 1000 * self.ctx.iteration + 100 * index + point
                runs.append(
                    md_grid.MDRun(
                        key=f'md_iter_{self.ctx.iteration:02d}_{task}',
                        structure=self.inputs.structures[key],
                        settings=_md_settings(s, self.ctx.trust, temperature, field, seed),
                        driver={'committee': self.ctx.committee},
                    )
                )
                self.ctx.md_tasks[task] = {'temperature_K': temperature, 'field': list(field), 'key': runs[-1].key}
        md_grid.enqueue(self, runs)
        self.report(f'iteration {self.ctx.iteration}: {len(runs)} MD run(s) to run')

    def md_queued(self):
        return md_grid.has_queued(self)

    def run_md(self):
        """Launch the next wave of exploration runs (``md.max_concurrent`` at a time); the loop waits for it."""
        return ToContext(**md_grid.launch_next(self))

    def inspect_explore(self):
        usable, failures = {}, []
        for task, condition in self.ctx.md_tasks.items():
            node = self.ctx[condition['key']]
            ok, message = md_grid.outcome(node)
            if ok and 'uncertainty' in node.outputs:
                usable[task] = node
                if message:
                    self.report(f'{task}: MD stopped early (kept): {message}')
            else:
                failures.append(f'{task}: {message or "no committee uncertainty was logged"}')
                self.report(f'{task}: MD failed: {failures[-1]}')
        self.ctx.usable_md = usable
        nodes = [self.ctx[condition['key']] for condition in self.ctx.md_tasks.values()]
        self.ctx.current['explore_s'] = _span(nodes)
        self.ctx.current['md'] = {
            'runs': len(nodes),
            'usable': len(usable),
            'stopped_early': sum(1 for n in usable.values() if n.exit_status),
            'failed': failures,
        }
        bound, total = self.ctx.settings.min_md_success_fraction, len(nodes)
        if len(usable) < bound * total - 1e-9 or not usable:
            return self.exit_codes.ERROR_EXPLORATION.format(
                iteration=self.ctx.iteration,
                done=len(usable),
                total=total,
                bound=bound,
                message='; '.join(failures[:5]),
            )
        return None

    def select(self):
        s = self.ctx.settings
        remaining = self.ctx.criterion.remaining_labels(self.ctx.labels_used)
        cap = s.max_selected if remaining is None else min(s.max_selected, remaining)
        explored = {}
        for task, node in self.ctx.usable_md.items():
            explored[f'trajectory_{task}'] = node.outputs.trajectory
            explored[f'uncertainty_{task}'] = node.outputs.uncertainty
        parameters = {
            'trust': self.ctx.trust.to_dict(),
            'cap': cap,
            'seed': s.seed + self.ctx.iteration,
            'species': sorted(self.ctx.committee.species),
            'prefix': f'iter_{self.ctx.iteration:02d}',
        }
        try:
            outputs, node = select_frames.run_get_node(
                orm.Dict(parameters),
                self.ctx.dataset,
                metadata={'call_link_label': f'select_iter_{self.ctx.iteration:02d}'},
                **explored,
            )
        except Exception as exc:  # noqa: BLE001 - reported as this workchain's exit code, outputs kept
            return self.exit_codes.ERROR_SELECTION.format(iteration=self.ctx.iteration, message=str(exc))
        record = outputs['record'].get_dict()
        self.ctx.label_stage = f'iter_{self.ctx.iteration:02d}'
        self.ctx.current['select_s'] = _span([node])
        self.ctx.current['selection'] = {key: record[key] for key in ('counts', 'shares', 'n_frames')}
        self.ctx.current['trust'] = self.ctx.trust.to_dict()
        self.ctx.current['selection_pk'] = node.pk
        self.ctx.to_label = {key: value for key, value in outputs.items() if key != 'record'}
        self.ctx.label_deviations = {}
        for key, _structure in self.ctx.to_label.items():
            rank = int(key.rsplit('_', 1)[1])
            frame = record['frames'][record['selected'][rank]]
            self.ctx.label_deviations[key] = {
                'force_deviation': frame['force_deviation'],
                'bec_deviation': frame['bec_deviation'],
            }
        accurate = [entry['selection']['shares']['accurate'] for entry in self.ctx.history]
        accurate.append(record['shares']['accurate'])
        decision = self.ctx.criterion.decide(accurate, self.ctx.labels_used, candidates=record['counts']['candidate'])
        counts = record['counts']
        self.report(
            f'iteration {self.ctx.iteration}: {record["n_frames"]} frames explored: {counts["accurate"]} accurate, '
            f'{counts["candidate"]} candidates, {counts["failed"]} failed; {len(self.ctx.to_label)} selected. '
            f'{decision.message}'
        )
        self.ctx.current['decision'] = decision.reason
        self.ctx.current['decision_message'] = decision.message
        if decision.stop:
            self.ctx.stop = (decision.reason, decision.message)
        return None

    def should_label(self):
        """Label unless converged / nothing to label / budget gone; at max_iterations the labels still count."""
        if not self.ctx.to_label:
            return False
        return self.ctx.stop is None or self.ctx.stop[0] == MAX_ITERATIONS

    def calibrate(self):
        if self.ctx.new_labels is None:
            return None
        deviations = [self.ctx.label_deviations.get(key, {}) for key in self.ctx.new_label_order]
        try:
            result = calibrate_committee(
                self.ctx.committee,
                self.ctx.new_labels,
                orm.List(deviations),
                orm.Dict(self.ctx.trust.to_dict()),
                metadata={'call_link_label': f'calibrate_iter_{self.ctx.iteration:02d}'},
            ).get_dict()
        except Exception as exc:  # noqa: BLE001 - a diagnostic: the labels are merged already, the loop goes on
            self.report(f'iteration {self.ctx.iteration}: calibration failed, trust levels kept: {exc}')
            self.ctx.current['calibration'] = {'error': str(exc)}
            return None
        self.ctx.current['calibration'] = {key: result[key] for key in ('force', 'bec', 'suggested')}
        force, bec = result['force'], result['bec']
        self.report(
            f'iteration {self.ctx.iteration}: on the {force["n"]} new labels, committee force error RMSE '
            f'{_fmt(force["error_rmse"])} eV/Å (error/deviation {_fmt(force["ratio"])}, rank corr. '
            f'{_fmt(force["rank_correlation"])}); Z* error RMSE {_fmt(bec["error_rmse"])} e on {bec["n"]} frame(s)'
        )
        if self.ctx.settings.adapt_trust:
            self.ctx.trust = TrustLevels(**result['suggested'])
            self.report(f'trust levels adapted to {self.ctx.trust.to_dict()}')
        return None

    def finish_iteration(self):
        entry = dict(self.ctx.current)
        entry['labels_used'] = self.ctx.labels_used
        entry['dataset_frames'] = self.ctx.dataset.n_frames
        entry['dataset_bec_frames'] = self.ctx.dataset.base.attributes.get('n_born_charges')
        entry['dataset_uuid'] = self.ctx.dataset.uuid
        entry['committee_uuid'] = self.ctx.committee.uuid
        entry['trust_next'] = self.ctx.trust.to_dict()
        labelled = entry.pop('labelled', False)
        entry['label_s'] = _span([self.ctx[f'label_{g}'] for g in self.ctx.label_nodes]) if labelled else 0.0
        self.ctx.label_nodes = {}
        self.ctx.history.append(entry)
        self.out(f'iterations.iter_{self.ctx.iteration:02d}', orm.Dict(entry).store())
        timings = ', '.join(
            f'{name} {entry.get(f"{name}_s", 0.0):.0f} s' for name in ('label', 'train', 'explore', 'select')
        )
        self.report(f'iteration {self.ctx.iteration} done: dataset {entry["dataset_frames"]} frames; {timings}')

    def needs_final_training(self):
        stopped_with_new_labels = self.ctx.dataset is not None and self.ctx.dataset.uuid != self.ctx.trained_on
        return self.ctx.settings.final_training and stopped_with_new_labels and self.ctx.committee is not None

    def results(self):
        reason, message = self.ctx.stop if self.ctx.stop else (CONTINUE, 'stopped')
        self.out('dataset', self.ctx.dataset)
        if self.ctx.committee is not None:
            self.out('committee', self.ctx.committee)
        history = [*self.ctx.history, {'stop_reason': reason, 'message': message}]
        self.out('history', orm.List(history).store())
        self.report(f'active learning ended after {self.ctx.iteration} iteration(s): {reason}: {message}')


def _fmt(value) -> str:
    return 'n/a' if value is None else f'{value:.3g}'
