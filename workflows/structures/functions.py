"""Calcfunctions that sample structures for labelling, so that the provenance graph shows how every frame was made.

Each wraps a function of ``ionfield.models.structures.sampling``; the seed, the amplitude and the count are input
nodes, so a dataset can be traced back to the reference structure and regenerated exactly.

Invalid parameters (a singular supercell matrix, a negative ``stdev``, a strain that inverts the cell, an
unreadable file) do not raise: the calcfunction returns an exit code whose message says what was wrong,
so the node is stored as *failed* (not *excepted*), ``verdi process show`` prints the reason, and a
calling WorkChain can test ``node.is_failed`` / ``node.exit_status``. Called directly, a failed
calcfunction returns an empty dict; use ``.run_get_node(...)`` to get the node and its ``exit_message``.
The codes sit in the 3xx range of the label stage, next to the structure check (301-304):

- 305 ``EXIT_INVALID_SAMPLING_PARAMETERS``: a parameter is out of range;
- 306 ``EXIT_UNREADABLE_STRUCTURE_FILE``: the file is not a readable, ordered, single structure.

Labels of the outputs say what they are, e.g. ``alpha-Li3N rattle 0.05 Å #3 seed 7``; the base is the
label of the input structure, else its formula.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from ionfield.models.structures import defects, sampling

__all__ = (
    'EXIT_INVALID_SAMPLING_PARAMETERS',
    'EXIT_UNREADABLE_STRUCTURE_FILE',
    'make_defect_cell',
    'make_supercell',
    'random_strains',
    'rattle_structure',
    'read_structure_file',
    'strain_structure',
)

EXIT_INVALID_SAMPLING_PARAMETERS = ExitCode(305, 'Invalid sampling parameters: {detail}.')
EXIT_UNREADABLE_STRUCTURE_FILE = ExitCode(306, 'The structure file could not be used: {detail}.')

_MAX_LABEL = 255  # the length of the label column of a node


@calcfunction
def make_supercell(structure: orm.StructureData, matrix: orm.List) -> orm.StructureData | ExitCode:
    """Return the supercell ``matrix @ cell`` of ``structure`` (``matrix``: [n], 3 or 3x3 integers)."""
    value = matrix.get_list()
    try:
        atoms = sampling.make_supercell(structure.get_ase(), value[0] if len(value) == 1 else value)
    except ValueError as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    return _structure(atoms, f'{_base_label(structure)} supercell {_compact(value)}')


@calcfunction
def make_vacancies(structure: orm.StructureData, species: orm.Str, count: orm.Int) -> orm.StructureData | ExitCode:
    """Return ``structure`` without its first ``count`` atoms of ``species`` (vacancies for transport MD)."""
    try:
        atoms = sampling.remove_atoms(structure.get_ase(), species.value, count.value)
    except ValueError as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    return _structure(atoms, f'{_base_label(structure)} {count.value} {species.value} vacancy')


@calcfunction
def make_defect_cell(structure: orm.StructureData, defect: orm.Dict, seed: orm.Int, **kwargs) -> dict | ExitCode:
    """``cell``: ``structure`` with the defect of ``defect`` (``DefectSpec`` as a dict), sites drawn with ``seed``;
    ``defect``: what was done, the formal oxidation states and the cell's net charge (the DFT ``tot_charge``).

    An optional ``oxidation_states`` Dict fixes the formal states; otherwise pymatgen guesses them.
    """
    given = kwargs['oxidation_states'].get_dict() if 'oxidation_states' in kwargs else None
    try:
        spec = defects.DefectSpec(**defect.get_dict())
        atoms = defects.make_defect(structure.get_ase(), spec, seed.value, given)
    except (TypeError, ValueError) as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    record = dict(atoms.info['defect'])
    record['oxidation_states'] = atoms.info['oxidation_states']
    base = _base_label(structure)
    name = 'perfect' if spec.mode == 'none' else f'{spec.mode} {spec.count} {spec.species}'
    return {'cell': _structure(atoms, f'{base} {name} (q {record["charge"]:+g})'), 'defect': orm.Dict(record)}


@calcfunction
def rattle_structure(
    structure: orm.StructureData, stdev: orm.Float, seed: orm.Int, count: orm.Int
) -> dict[str, orm.StructureData] | ExitCode:
    """Return ``count`` copies with Gaussian displacements of ``stdev`` Å as ``rattled_000``, ``rattled_001``, ..."""
    try:
        copies = sampling.rattle(structure.get_ase(), stdev.value, seed.value, count.value)
    except ValueError as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    base = _base_label(structure)
    return {
        f'rattled_{index:03d}': _structure(atoms, f'{base} rattle {stdev.value:g} Å #{index} seed {seed.value}')
        for index, atoms in enumerate(copies)
    }


@calcfunction
def strain_structure(structure: orm.StructureData, strain: orm.List) -> orm.StructureData | ExitCode:
    """Return ``structure`` with the cell ``cell @ (I + eps)``; ``strain``: [s], 6 Voigt numbers or 3x3."""
    value = strain.get_list()
    try:
        atoms = sampling.strain(structure.get_ase(), value[0] if len(value) == 1 else value)
    except ValueError as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    return _structure(atoms, f'{_base_label(structure)} strain {_compact(value)}')


@calcfunction
def random_strains(
    structure: orm.StructureData, max_strain: orm.Float, seed: orm.Int, count: orm.Int
) -> dict[str, orm.Data] | ExitCode:
    """Return ``count`` randomly strained copies as ``strained_000``, ... and their tensors as ``strains``.

    ``strains`` is an ``ArrayData`` with the array ``strains`` of shape (count, 3, 3), the strain tensor of
    each copy in order, so stress labels can be related to the applied strain without recomputing it.
    """
    try:
        copies = sampling.random_strains(structure.get_ase(), max_strain.value, seed.value, count.value)
    except ValueError as exception:
        return EXIT_INVALID_SAMPLING_PARAMETERS.format(detail=str(exception))
    base = _base_label(structure)
    outputs: dict[str, orm.Data] = {
        f'strained_{index:03d}': _structure(
            atoms, f'{base} random strain {max_strain.value:g} #{index} seed {seed.value}'
        )
        for index, atoms in enumerate(copies)
    }
    tensors = orm.ArrayData()
    tensors.set_array('strains', np.array([atoms.info['strain'] for atoms in copies]))
    outputs['strains'] = tensors
    return outputs


@calcfunction
def read_structure_file(file: orm.SinglefileData) -> orm.StructureData | ExitCode:
    """Return the structure in a CIF, POSCAR/CONTCAR (.vasp) or (ext)xyz file (format from its name or content)."""
    try:
        atoms = sampling.read_structure(file.get_content(mode='rb'), name=file.filename)
    except ValueError as exception:
        return EXIT_UNREADABLE_STRUCTURE_FILE.format(detail=str(exception))
    return _structure(atoms, f'{atoms.get_chemical_formula(mode="metal")} from {file.filename}')


def _structure(atoms, label: str) -> orm.StructureData:
    structure = orm.StructureData(ase=atoms)
    structure.label = label[:_MAX_LABEL]
    return structure


def _base_label(structure: orm.StructureData) -> str:
    return structure.label or structure.get_formula(mode='hill_compact')


def _compact(value) -> str:
    """A list as short text for a label: [2, 2, 2] -> 2x2x2, anything else as its JSON-like repr."""
    if isinstance(value, list) and len(value) == 3 and all(isinstance(item, int) for item in value):
        return 'x'.join(str(item) for item in value)
    return str(value).replace(' ', '')
