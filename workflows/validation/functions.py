"""Calcfunctions of the validation stage: which structures DFT labels, and the numbers each side gives.

The DFT side and the model side are computed from the *same* structures (strained cells, phonopy
displacements, the zero-stress cell), made here once with provenance, so a difference in the table is a
difference of the two methods, not of the geometries. The logic is in :mod:`ionfield.models.validation`;
these functions turn nodes into arrays and back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase import units

from ionfield.models import keys
from ionfield.models.validation import compare, properties, structures
from ionfield.models.validation.plots import plot_validation
from ionfield.models.validation.settings import ValidationSettings
from ionfield.plugins.data.dataset import DatasetData

#: Link label of the undistorted structure among the labelled ones.
REFERENCE = 'reference'
#: Link label of the undistorted phonon supercell (only when it is larger than the cell: else the reference).
PHONON_REFERENCE = 'phonon_reference'


def strain_key(name: str) -> str:
    """A link label for a strained cell (``e1+`` -> ``strain_e1_plus``)."""
    return 'strain_' + name.replace('+', '_plus').replace('-', '_minus')


def displacement_key(index: int) -> str:
    return f'displaced_{index:03d}'


def _settings(node: orm.Dict) -> ValidationSettings:
    return ValidationSettings.from_dict(node.get_dict())


def _phonons(structure: orm.StructureData, settings: ValidationSettings):
    """The phonopy object and its displaced cells (deterministic: made again wherever it is needed)."""
    return structures.phonon_displacements(
        structure.get_ase(), supercell=tuple(settings.phonon_supercell), distance=settings.displacement
    )


@calcfunction
def validation_structures(structure: orm.StructureData, settings: orm.Dict) -> dict:
    """The reference cell, its 12 strained copies (elastic constants) and phonopy's displaced cells."""
    values = _settings(settings)
    atoms = structure.get_ase()
    outputs = {REFERENCE: orm.StructureData(ase=atoms)}
    for name, strained in structures.strained_cells(atoms, values.strain).items():
        outputs[strain_key(name)] = orm.StructureData(ase=strained)
    phonon, displaced = _phonons(structure, values)
    if _phonon_reference(values) == PHONON_REFERENCE:
        outputs[PHONON_REFERENCE] = orm.StructureData(ase=structures.to_ase(phonon.supercell))
    for index, cell in enumerate(displaced):
        outputs[displacement_key(index)] = orm.StructureData(ase=cell)
    return outputs


def _phonon_reference(values: ValidationSettings) -> str:
    """The key of the undisplaced phonon supercell: the cell itself for a [1, 1, 1] supercell."""
    return REFERENCE if list(values.phonon_supercell) == [1, 1, 1] else PHONON_REFERENCE


def frames_by_key(dataset: DatasetData, summary: orm.Dict) -> dict:
    """``{structure key: Frame}`` of the structures a ``LabelWorkChain`` labelled."""
    frames = dataset.get_dataset()
    return {
        key: frames[outcome['frame_index']]
        for key, outcome in summary['structures'].items()
        if outcome.get('frame_index') is not None
    }


def missing_labels(dataset: DatasetData | None, summary: orm.Dict, names: list[str]) -> list[str]:
    """The structures among ``names`` without a frame with forces and stress (the DFT side needs both)."""
    frames = frames_by_key(dataset, summary) if dataset is not None else {}
    return [name for name in names if name not in frames or not (frames[name].has_forces and frames[name].has_stress)]


def _side(values: ValidationSettings, structure, stress_of, forces_of) -> dict:
    """Elastic constants, zero-stress cell and Gamma frequencies from stresses and forces by key."""
    names = [structures.strain_label(component, sign) for component in range(6) for sign in (1, -1)]
    stresses = {name: stress_of(strain_key(name)) for name in names}
    elastic = properties.elastic_constants(stresses, values.strain)
    cell = structure.get_ase().cell.array
    zero_stress = properties.zero_stress_cell(cell, stress_of(REFERENCE), elastic.matrix)
    phonon, displaced = _phonons(structure, values)
    forces = [forces_of(displacement_key(index)) for index in range(len(displaced))]
    # the undisplaced forces are subtracted: neither side need have its force minimum exactly at this geometry
    reference_forces = np.asarray(forces_of(_phonon_reference(values)))
    return {
        'elastic': elastic.to_dict(),
        'zero_stress_cell': zero_stress.tolist(),
        'lattice': properties.lattice_parameters(zero_stress),
        'gamma_thz': properties.gamma_frequencies(phonon, forces, reference_forces=reference_forces).tolist(),
        'residual_force_max': float(np.abs(np.asarray(forces_of(REFERENCE))).max()),
    }


@calcfunction
def dft_properties(structure: orm.StructureData, settings: orm.Dict, dataset: DatasetData, summary: orm.Dict) -> dict:
    """``properties`` (elastic constants, zero-stress lattice, Gamma frequencies from the DFT labels) and
    ``relaxed`` (the zero-stress cell, where the Born charges are compared)."""
    values = _settings(settings)
    frames = frames_by_key(dataset, summary)
    result = _side(values, structure, lambda key: frames[key].stress, lambda key: frames[key].forces)
    relaxed = structure.get_ase()
    relaxed.set_cell(np.array(result['zero_stress_cell']), scale_atoms=True)
    return {'properties': orm.Dict(result), 'relaxed': orm.StructureData(ase=relaxed)}


@calcfunction
def model_properties(model, structure: orm.StructureData, settings: orm.Dict, **labelled) -> orm.Dict:
    """The model's numbers on the same structures as DFT, plus its own relaxed lattice.

    ``labelled`` holds the structures (``validation_structures``' outputs, as ``structure_<key>``), the
    zero-stress cell ``relaxed``, and optionally ``samples`` (a ``DatasetData`` of DFT-labelled frames from
    production MD) on which the model's force RMSE is measured.
    """
    from ionfield.models.potential.devices import limit_threads
    from ionfield.models.potential.evaluation import predict

    limit_threads()
    values = _settings(settings)
    calculator = model.get_calculator()
    cells = {key[len('structure_') :]: node.get_ase() for key, node in labelled.items() if key.startswith('structure_')}
    # stresses of the strained cells and the reference, forces of the displaced cells and the references
    stressed = [key for key in cells if key.startswith('strain_') or key == REFERENCE]
    stresses = properties.calculated_stresses({key: cells[key] for key in stressed}, calculator)
    pushed = [key for key in cells if key not in stressed or key == REFERENCE]
    forces = dict(zip(pushed, properties.calculated_forces([cells[key] for key in pushed], calculator), strict=True))
    result = _side(values, structure, stresses.__getitem__, forces.__getitem__)
    relaxed_model = properties.relax_cell(structure.get_ase(), calculator, values.relax_fmax, values.relax_steps)
    result['relaxed_cell'] = relaxed_model.cell.array.tolist()
    result['relaxed_lattice'] = properties.lattice_parameters(relaxed_model.cell.array)
    if model.has_bec:
        atoms = labelled['relaxed'].get_ase()
        atoms.calc = calculator
        atoms.get_potential_energy()
        result['born_charges'] = np.asarray(calculator.results[keys.BORN_CHARGES]).tolist()
    if 'samples' in labelled:
        frames = labelled['samples'].get_dataset()
        predicted = predict(calculator, frames)
        pairs = [(p, f.forces) for p, f in zip(predicted['forces'], frames, strict=True) if f.has_forces]
        result['sample_force_rmse'] = properties.force_rmse([p for p, _ in pairs], [f for _, f in pairs])
        result['n_samples'] = len(pairs)
    return orm.Dict(result)


@calcfunction
def validation_table(
    dft: orm.Dict, model: orm.Dict, settings: orm.Dict, override: orm.Bool, relaxed: DatasetData
) -> dict:
    """``table``: every comparison with its thresholds and status (``pass``/``warn``/``fail``; ``overridden``
    when it failed and the caller goes on regardless); ``plot``: the parity plots and the gate (PNG).

    The DFT lattice is refined by a second Newton step from the labelled zero-stress cell (``relaxed``: its
    stress, and its DFPT Born charges where the model has a head), so its error is of fourth order in the
    distance of the input from the DFT minimum; the model's lattice is its own full relaxation.
    """
    values = _settings(settings)
    d, m = dft.get_dict(), model.get_dict()
    frame = relaxed.get_dataset()[0]
    elastic = properties.ElasticConstants.from_dict(d['elastic'])
    dft_cell = properties.zero_stress_cell(frame.cell, frame.stress, elastic)
    table = compare.compare_lattice(dft_cell, np.array(m['relaxed_cell']), values.thresholds('lattice'))
    model_elastic = properties.ElasticConstants.from_dict(m['elastic'])
    table += compare.compare_elastic(elastic, model_elastic, values.thresholds('elastic'))
    table += compare.compare_phonons(np.array(d['gamma_thz']), np.array(m['gamma_thz']), values.thresholds('phonons'))
    if frame.has_born_charges and 'born_charges' in m:
        born = np.array(m['born_charges'])
        table += compare.compare_born_charges(frame.born_charges, born, values.thresholds('born_charges'))
    if 'sample_force_rmse' in m:
        table += compare.compare_forces(m['sample_force_rmse'], values.thresholds('forces'))
    overridden = bool(override.value) and not table.passed
    result = {
        **table.to_dict(),
        'overridden': overridden,
        'dft_lattice': properties.lattice_parameters(dft_cell),
        'dft_residual_stress_gpa': (np.asarray(frame.stress) / units.GPa).tolist(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_validation(d, m, result, Path(tmp) / 'validation.png')
        plot = orm.SinglefileData(path)
    return {'table': orm.Dict(result), 'plot': plot}
