"""One home for the fakes the workflow tests use (DP-GEN2's ``tests/mocked_ops.py``).

A fake is a process with the real ports that returns made-up outputs, so a workchain's logic (what it
launches, how it judges and records outcomes) is tested without running nequip or QE. The real engines run
in the slow tests and in the fault suite.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from aiida import orm
from aiida.engine import WorkChain
from aiida.plugins import CalculationFactory, WorkflowFactory

from ionfield.plugins.data.model import ModelData
from ionfield.plugins.data.trajectory import MDTrajectoryData

MDCalculation = CalculationFactory('ionfield.md')
MDWorkChain = WorkflowFactory('ionfield.md.base')


class FakeMD(WorkChain):
    """``MDWorkChain``'s inputs; outputs from :meth:`make_outputs`; ``ERROR_MD_FAILED`` for a label in ``failing``,
    the outputs and ``STOPPED_CLOSE_CONTACT`` for one in ``stopping``.

    A subclass sets ``failing`` and ``stopping`` (sets the tests fill; a run matches when its label ends with one
    of them) and ``make_outputs`` (usually a calcfunction, so the outputs have provenance).
    """

    failing: ClassVar[set[str]] = set()
    stopping: ClassVar[set[str]] = set()

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MDCalculation, namespace='md', exclude=('metadata',), namespace_options={'validator': None})
        spec.outline(cls.fake)
        spec.output('trajectory', valid_type=MDTrajectoryData, required=False)
        spec.output('uncertainty', valid_type=orm.ArrayData, required=False)
        spec.output('summary', valid_type=orm.Dict, required=False)
        spec.exit_code(502, 'ERROR_MD_FAILED', message='fake failure')
        spec.exit_code(511, 'STOPPED_CLOSE_CONTACT', message='stopped on a close contact: {message}')

    def fake(self):
        if any(self.node.label.endswith(label) for label in self.failing):
            return self.exit_codes.ERROR_MD_FAILED
        self.out_many(self.make_outputs(self.inputs.md))
        if any(self.node.label.endswith(label) for label in self.stopping):
            return self.exit_codes.STOPPED_CLOSE_CONTACT.format(message='Li-Li 0.61 Å at step 40')
        return None

    def make_outputs(self, md) -> dict:
        raise NotImplementedError


def submit_md_as(fake: type[FakeMD], submit, process, inputs, kwargs):
    """A mocked workchain's ``submit``: an ``MDWorkChain`` becomes ``fake``, labelled by its call link label."""
    if process is not MDWorkChain:
        return submit(process, inputs, **kwargs)
    label = kwargs['metadata']['call_link_label']
    kwargs['metadata'] = {'call_link_label': label, 'label': label}
    kwargs['md'].pop('metadata', None)
    return submit(fake, **kwargs)


#: Bytes that pass ``ModelData``'s check (a zip file) but are no model: for tests whose code never loads one.
DUMMY_PACKAGE = b'PK\x03\x04' + b'\x00' * 64


def dummy_model(species=('Li', 'N'), has_bec: bool = True, seed: int = 0, **attributes) -> ModelData:
    """A stored ``ModelData`` whose package is :data:`DUMMY_PACKAGE` (for CLI, validation and workflow logic)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'model.nequip.zip'
        path.write_bytes(DUMMY_PACKAGE)
        attributes.setdefault('r_max', 4.5)
        return ModelData(path, species=list(species), has_bec=has_bec, seed=seed, **attributes).store()
