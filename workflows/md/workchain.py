"""``MDWorkChain`` (``ionfield.md.base``): an ``MDCalculation`` that goes on by itself after a kill.

A field-MD run of a few ns outlives any walltime, and nodes fail. Handlers (aiida-quantumespresso style,
``BaseRestartWorkChain`` + ``@process_handler``):

* no result (out of walltime, cancelled by the scheduler, node lost): continue from the last state the run
  wrote (``parent_folder`` = its ``remote_folder``: trajectory, logs and ``state.npz`` are copied and the run
  appends), or start again when it was killed before its first checkpoint. ``max_iterations`` bounds it.
* a physical stop (committee uncertainty, close contact, temperature runaway, non-finite forces): not rerun,
  since the same dynamics would stop again; every frame is attached and the workchain ends with the same
  exit code, so a caller treats a workchain exactly like a calculation.
* bad input or a crash of the model: not rerun; the same exit code.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from ionfield.models.md.settings import MDSettings
from ionfield.plugins.exit_codes import exit_code_name
from ionfield.workflows.protocols import ProtocolFile, ProtocolMixin

MDCalculation = CalculationFactory('ionfield.md')

#: Exit codes of a run that stopped on a physical bound: every frame it wrote can be used.
STOPS = ('STOPPED_UNCERTAINTY', 'STOPPED_CLOSE_CONTACT', 'STOPPED_TEMPERATURE_RUNAWAY', 'STOPPED_NAN')
#: Exit codes that rerunning cannot fix.
UNRECOVERABLE = ('ERROR_INPUT', 'ERROR_MD_FAILED')


def md_usable(node) -> bool:
    """Whether the frames of an MD process (calculation or workchain) can be analysed: finished, or stopped."""
    return (node.is_finished_ok or exit_code_name(node) in STOPS) and 'trajectory' in node.outputs


class MDWorkChain(ProtocolMixin, BaseRestartWorkChain):
    """Run field MD to its end across walltimes and node failures; stop on the physical bounds."""

    _process_class = MDCalculation
    protocol_file = ProtocolFile(__package__, 'protocol.yaml')

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData,
        *,
        model=None,
        committee=None,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """A builder for one run of ``model`` (or ``committee``) from ``structure``; ``overrides`` sets ``settings``."""
        settings = MDSettings.from_dict(cls.get_protocol_inputs(protocol, overrides)['settings']).to_dict()
        builder = cls.get_builder()
        builder.md.code = code
        builder.md.structure = structure
        builder.md.settings = orm.Dict(settings)
        if model is not None:
            builder.md.model = model
        if committee is not None:
            builder.md.committee = committee
        builder.md.metadata.options.update(options or {})
        return builder

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MDCalculation, namespace='md')
        spec.expose_outputs(MDCalculation)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        # the calculation's own codes, under the same names: callers test the name, whichever process ran
        for name in (*UNRECOVERABLE, *STOPS):
            code = MDCalculation.exit_codes[name]
            spec.exit_code(code.status, name, message=code.message)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MDCalculation, 'md'))

    def report_error_handled(self, node, action: str) -> None:
        self.report(f'{node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}; {action}')

    def _end_like(self, node) -> ProcessHandlerReport:
        """Attach what ``node`` produced and end with its exit code (by name)."""
        self.out_many(self.exposed_outputs(node, MDCalculation))
        message = node.outputs.summary.get('message', '') if 'summary' in node.outputs else node.exit_message
        return ProcessHandlerReport(True, self.exit_codes[exit_code_name(node)].format(message=message))

    @process_handler(priority=600, exit_codes=[MDCalculation.exit_codes.ERROR_NO_RESULT])
    def handle_no_result(self, node):
        """Killed from outside: continue from its last state, or start again if it wrote none."""
        if 'state' in node.outputs:
            self.ctx.inputs.parent_folder = node.outputs.remote_folder
            frames = node.outputs.trajectory.nframes if 'trajectory' in node.outputs else 0
            self.report_error_handled(node, f'continuing from its last state ({frames} frames kept)')
        else:
            self.report_error_handled(node, 'it wrote no state yet: starting again')
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[MDCalculation.exit_codes[name] for name in STOPS])
    def handle_stop(self, node):
        """A physical stop: the same dynamics would stop again; keep the frames and report the reason."""
        self.report_error_handled(node, 'not rerun (a physical stop); every frame is kept')
        return self._end_like(node)

    @process_handler(priority=400, exit_codes=[MDCalculation.exit_codes[name] for name in UNRECOVERABLE])
    def handle_unrecoverable(self, node):
        """Bad input or a crash of the model: rerunning cannot help."""
        self.report_error_handled(node, 'not rerun')
        return self._end_like(node)
