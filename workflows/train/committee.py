"""``CommitteeWorkChain`` (``ionfield.committee``): N models, distinct seeds, trained in parallel.

Each member is a ``TrainWorkChain`` with seed ``base_seed + k`` (it seeds the weights, the data
split, and the shuffling), all submitted at once, so a scheduler runs them side by side and
a laptop runs them as separate processes (one torch thread each: set by ``ionfield-train``).
Warm start: with ``parent_committee``, member k starts from member k of that committee.

The output ``committee`` node is made by a calcfunction from the members, so the provenance
graph links it to every model and dataset. Members that fail are reported, and the committee is
built from those that finished when at least ``min_members`` did.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction
from aiida.plugins import WorkflowFactory

from ionfield.models.train.settings import TrainingSettings
from ionfield.plugins.data.model import CommitteeData, ModelData
from ionfield.workflows.protocols import ProtocolMixin

from .workchain import TRAIN_PROTOCOLS

TrainWorkChain = WorkflowFactory('ionfield.train.base')


@calcfunction
def make_committee(**members: ModelData) -> CommitteeData:
    """Committee node from its members (sorted by name: member_00, member_01, ...)."""
    return CommitteeData([members[key] for key in sorted(members)])


def validate_size(value, _ctx=None):
    if value is not None and value.value < 2:
        return f'a committee needs at least 2 members to measure disagreement, got {value.value}'
    return None


class CommitteeWorkChain(ProtocolMixin, WorkChain):
    """Train a seeded committee of models on one dataset."""

    protocol_file = TRAIN_PROTOCOLS

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        dataset,
        protocol: str | None = None,
        overrides: dict | None = None,
        base_seed: int = 0,
        parent_committee=None,
        options: dict | None = None,
    ):
        """A builder for ``committee_size`` members on ``dataset``; ``overrides`` may set any protocol key.

        With ``parent_committee`` only the ``training`` keys that overrides set are passed: a warm start keeps
        the parent's architecture (and refuses another one).
        """
        values = cls.get_protocol_inputs(protocol, overrides)
        training = values['training'] if parent_committee is None else (overrides or {}).get('training', {})
        builder = cls.get_builder()
        builder.member.train.code = code
        builder.member.train.dataset = dataset
        builder.member.train.metadata.options.update(options or {})
        builder.settings = orm.Dict(
            TrainingSettings.from_dict(training).to_dict() if parent_committee is None else training
        )
        builder.size = orm.Int(values['committee_size'])
        builder.base_seed = orm.Int(base_seed)
        if parent_committee is not None:
            builder.parent_committee = parent_committee
        return builder

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(TrainWorkChain, namespace='member', exclude=('train.settings', 'train.parent_model'))
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help='TrainingSettings shared by all members (seed is set per member).',
        )
        spec.input(
            'size',
            valid_type=orm.Int,
            default=lambda: orm.Int(4),
            validator=validate_size,
            help='Number of members (>= 2).',
        )
        spec.input(
            'base_seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Member k gets seed base_seed + k.'
        )
        spec.input(
            'min_members',
            valid_type=orm.Int,
            default=lambda: orm.Int(2),
            help='Fewest finished members that still make a committee.',
        )
        spec.input(
            'parent_committee',
            valid_type=CommitteeData,
            required=False,
            help='Warm start: member k starts from its member k.',
        )
        spec.outline(cls.validate, cls.train, cls.collect)
        spec.output('committee', valid_type=CommitteeData)
        spec.output_namespace('models', valid_type=ModelData, dynamic=True)
        spec.output('summary', valid_type=orm.Dict)
        spec.exit_code(
            420, 'ERROR_PARENT_MISMATCH', message='the parent committee has {have} members, {want} were asked for'
        )
        spec.exit_code(421, 'ERROR_TOO_FEW_MEMBERS', message='only {done} of {size} members finished (need {need})')

    def validate(self):
        size = self.inputs.size.value
        if self.inputs.min_members.value > size or self.inputs.min_members.value < 2:
            return self.exit_codes.ERROR_TOO_FEW_MEMBERS.format(done=0, size=size, need=self.inputs.min_members.value)
        if 'parent_committee' in self.inputs and self.inputs.parent_committee.size < size:
            return self.exit_codes.ERROR_PARENT_MISMATCH.format(have=self.inputs.parent_committee.size, want=size)
        return None

    def train(self):
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        parents = self.inputs.parent_committee.members if 'parent_committee' in self.inputs else None
        futures = {}
        for k in range(self.inputs.size.value):
            inputs = self.exposed_inputs(TrainWorkChain, namespace='member')
            inputs['train']['settings'] = orm.Dict({**settings, 'seed': self.inputs.base_seed.value + k})
            if parents is not None:
                inputs['train']['parent_model'] = parents[k]
            inputs['metadata'] = {'call_link_label': f'member_{k:02d}'}
            node = self.submit(TrainWorkChain, **inputs)
            self.report(f'member {k}: TrainWorkChain<{node.pk}> seed {self.inputs.base_seed.value + k}')
            futures[f'member_{k:02d}'] = node
        return ToContext(**futures)

    def collect(self):
        models, summary = {}, {'members': {}}
        for key in sorted(k for k in self.ctx if k.startswith('member_')):
            node = self.ctx[key]
            entry = {'pk': node.pk, 'exit_status': node.exit_status, 'message': node.exit_message}
            if node.is_finished_ok and 'model' in node.outputs:
                models[key] = node.outputs.model
                entry['metrics'] = node.outputs.model.metrics
            else:
                self.report(f'{key} (pk {node.pk}) failed: [{node.exit_status}] {node.exit_message}')
            summary['members'][key] = entry
        need = self.inputs.min_members.value
        summary['finished'] = len(models)
        self.out('summary', orm.Dict(summary).store())
        if len(models) < need:
            return self.exit_codes.ERROR_TOO_FEW_MEMBERS.format(
                done=len(models), size=self.inputs.size.value, need=need
            )
        self.out('models', models)
        self.out('committee', make_committee(**models))
        return None
