"""``TrainWorkChain`` (``ionfield.train.base``): a ``TrainCalculation`` that recovers from failures.

Handlers (aiida-quantumespresso style, ``BaseRestartWorkChain`` + ``@process_handler``):

* no result (killed by the scheduler, out of walltime, node lost): resume from the run's last
  checkpoint (``parent_folder`` = its ``remote_folder``), so no finished epoch is lost;
* NaN loss: restart with half the learning rate;
* out of memory: restart with half the batch size (down to 1, then give up).

Input errors (401) and nequip failures (404) are not retried: retrying cannot fix them.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from ionfield.models.train.settings import TrainingSettings
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin

TrainCalculation = CalculationFactory('ionfield.train')


#: The protocols of the train stage, shared by TrainWorkChain and CommitteeWorkChain.
TRAIN_PROTOCOLS = ProtocolFile(__package__, 'protocol.yaml')


class TrainWorkChain(ProtocolMixin, BaseRestartWorkChain):
    """Train one model; restart on NaN loss / out of memory, resume after a kill."""

    _process_class = TrainCalculation
    protocol_file = TRAIN_PROTOCOLS

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        dataset,
        protocol: str | None = None,
        overrides: dict | None = None,
        parent_model=None,
        options: dict | None = None,
    ):
        """A builder for one model on ``dataset``; ``overrides`` may set ``training`` keys.

        With ``parent_model`` only the keys that overrides set are passed: the architecture is the parent's.
        """
        values = cls.get_protocol_inputs(protocol, overrides)
        training = (overrides or {}).get('training', {}) if parent_model is not None else values['training']
        builder = cls.get_builder()
        builder.train.code = code
        builder.train.dataset = dataset
        builder.train.settings = orm.Dict(
            TrainingSettings.from_dict(training).to_dict() if parent_model is None else training
        )
        if parent_model is not None:
            builder.train.parent_model = parent_model
        builder.train.metadata.options.update(options or {})
        return builder

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(TrainCalculation, namespace='train')
        spec.expose_outputs(TrainCalculation)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        spec.exit_code(410, 'ERROR_UNRECOVERABLE', message='training failed and no handler could recover it: {message}')

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(TrainCalculation, 'train'))
        # only the keys that were given (a warm start inherits the architecture from its parent); the handlers
        # change learning_rate and batch_size from their effective values
        self.ctx.settings = self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs else {}

    def run_process(self):
        self.ctx.inputs.settings = orm.Dict(self.ctx.settings)
        return super().run_process()

    def _effective(self, name: str):
        """The value of setting ``name`` the last run used: given, or the default."""
        return TrainingSettings.from_dict(self.ctx.settings).to_dict()[name]

    def report_error_handled(self, calculation, action):
        self.report(
            f'{calculation.process_label}<{calculation.pk}> failed with exit status {calculation.exit_status}: '
            f'{calculation.exit_message}'
        )
        self.report(f'action taken: {action}')

    @process_handler(priority=600, exit_codes=[TrainCalculation.exit_codes.ERROR_NO_RESULT])
    def handle_no_result(self, calculation):
        """Resume from the interrupted run's checkpoints."""
        self.ctx.inputs.parent_folder = calculation.outputs.remote_folder
        self.report_error_handled(calculation, 'resuming from its last checkpoint')
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[TrainCalculation.exit_codes.ERROR_NAN_LOSS])
    def handle_nan_loss(self, calculation):
        """Start again with half the learning rate."""
        self.ctx.settings['learning_rate'] = self._effective('learning_rate') / 2
        self.ctx.inputs.pop('parent_folder', None)
        self.report_error_handled(calculation, f'restarting with learning_rate={self.ctx.settings["learning_rate"]:g}')
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY])
    def handle_out_of_memory(self, calculation):
        """Halve the batch size; give up below 1."""
        batch = self._effective('batch_size')
        if batch <= 1:
            self.report_error_handled(calculation, 'batch size is already 1: giving up')
            return ProcessHandlerReport(
                True, self.exit_codes.ERROR_UNRECOVERABLE.format(message='out of memory at batch size 1')
            )
        self.ctx.settings['batch_size'] = batch // 2
        self.ctx.inputs.pop('parent_folder', None)
        self.report_error_handled(calculation, f'restarting with batch_size={batch // 2}')
        return ProcessHandlerReport(True)

    @process_handler(
        priority=100,
        exit_codes=[TrainCalculation.exit_codes.ERROR_INPUT, TrainCalculation.exit_codes.ERROR_TRAINING_FAILED],
    )
    def handle_unrecoverable(self, calculation):
        """Bad input or a nequip error: retrying cannot help."""
        self.report_error_handled(calculation, 'not retried')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE.format(message=calculation.exit_message))
