"""What every engine's per-structure workchain promises ``LabelWorkChain``: one ``frame`` output and shared exit codes.

An engine adapter (``QeFrameWorkChain``, ``VaspFrameWorkChain``) labels one structure and returns a
``frame``: an ``ArrayData`` built by :func:`frame_node` with the labels in the project's units and
Born-charge convention (:data:`ionfield.models.data.dataset.BORN_CHARGE_CONVENTION`), NaN where a label was not
computed, and the UUID of the calculation behind it as the attribute ``source_uuid``. Positions, cell and
species are not repeated: they are those of the input ``structure``.

A frame workchain that could only produce part of the labels (DFPT failed, no band gap) still emits
``frame`` and then exits with the matching code below, so ``LabelWorkChain`` keeps the energies and forces
and reports why the Born charges are missing.
"""

from __future__ import annotations

import numpy as np
from aiida import orm

from ionfield.models import keys

__all__ = ('FRAME_ARRAYS', 'define_frame_spec', 'frame_arrays', 'frame_node')

FRAME_ARRAYS = ('energy', 'forces', 'stress', 'born_charges', 'eps_inf')
"""Arrays of a ``frame`` node: energy () eV, forces (N,3) eV/Å, stress (3,3) eV/Å^3 (ASE sign), born_charges
(N,3,3) e, eps_inf (3,3)."""


def define_frame_spec(spec, bec_help: str) -> None:
    """The ports and exit codes every engine adapter shares: ``structure`` and ``bec`` in, ``frame`` out.

    The exit codes are 3xx of the label stage (301-304 belong to the structure check).
    """
    spec.input('structure', valid_type=orm.StructureData, help='The structure to label.')
    spec.input('bec', valid_type=orm.Bool, default=lambda: orm.Bool(True), help=bec_help)
    spec.output('frame', valid_type=orm.ArrayData, help='The labels (see `ionfield.workflows.label.frame`).')
    spec.exit_code(320, 'ERROR_UNSUPPORTED_ELEMENT', message='No pseudopotential or POTCAR for {elements}: {detail}.')
    spec.exit_code(
        321,
        'ERROR_SCF_FAILED',
        message='The SCF calculation failed and could not be recovered: {detail}. Nothing was labelled.',
    )
    spec.exit_code(
        322,
        'ERROR_SCF_INCOMPLETE_OUTPUT',
        message='The SCF calculation finished without {detail}. Nothing was labelled.',
    )
    spec.exit_code(
        330,
        'ERROR_NO_GAP',
        message='No band gap ({detail}): Born charges are undefined for a metal. Energy, forces and stress were kept.',
    )
    spec.exit_code(
        331,
        'ERROR_DFPT_FAILED',
        message='The DFPT calculation failed: {detail}. Energy, forces and stress were kept.',
    )


def frame_arrays(natoms: int, energy=None, forces=None, stress=None, born_charges=None, eps_inf=None) -> dict:
    """The arrays of a frame with NaN for every label not given; shapes are checked."""
    shapes = {'energy': (), 'forces': (natoms, 3), 'stress': (3, 3), 'born_charges': (natoms, 3, 3), 'eps_inf': (3, 3)}
    given = {'energy': energy, 'forces': forces, 'stress': stress, 'born_charges': born_charges, 'eps_inf': eps_inf}
    arrays = {}
    for name, shape in shapes.items():
        value = given[name]
        array = np.full(shape, np.nan) if value is None else np.asarray(value, dtype=float).reshape(shape)
        arrays[name] = array
    return arrays


def frame_node(natoms: int, source_uuid: str, **labels) -> orm.ArrayData:
    """An unstored ``frame`` node (to be returned by an engine's conversion calcfunction)."""
    node = orm.ArrayData()
    for name, array in frame_arrays(natoms, **labels).items():
        node.set_array(name, array)
    node.base.attributes.set(keys.SOURCE_UUID, source_uuid)
    return node
