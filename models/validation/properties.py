"""The physics compared by a validation, from plain arrays (the DFT side) or an ASE calculator (the model side).

Conventions: Å, eV, stress in eV/Å^3 with ASE's sign (positive = tensile: ``sigma = (1/V) dE/d(eps)``,
a stretched cell has a positive stress), elastic constants and moduli in GPa, frequencies in THz and
Born charges in e, ``(N, 3, 3)`` in the project's index order (:mod:`ionfield.models.data.born`).
Voigt order is ASE's, ``xx, yy, zz, yz, xz, xy``, with engineering shears (:mod:`.structures`).

The DFT numbers come from labelled frames computed elsewhere, so every function of the DFT side takes
arrays: the stresses of the strained cells of :func:`.structures.strained_cells` and the forces of the
displaced cells of :func:`.structures.phonon_displacements`. The model side computes the same arrays
with :func:`calculated_stresses` and :func:`calculated_forces` and goes through the same functions.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import BaseCalculator
from ase.cell import Cell
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from phonopy import Phonopy

from ionfield.models.data.born import asr_corrected

from .structures import VOIGT_INDICES, strain_label


def voigt(stress) -> np.ndarray:
    """A stress given as 3x3 or as Voigt 6 (``xx, yy, zz, yz, xz, xy``) as Voigt 6."""
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (6,):
        return stress.copy()
    if stress.shape == (3, 3):
        return np.array([stress[row, column] for row, column in VOIGT_INDICES])
    raise ValueError(f'a stress must be 3x3 or Voigt 6, got shape {stress.shape}')


@dataclasses.dataclass
class ElasticConstants:
    """A 6x6 Voigt elastic matrix in GPa (symmetrised) and how asymmetric the measured one was.

    ``asymmetry`` is the largest ``|C_ij - C_ji| / 2`` of the measured matrix in GPa: a large one means
    the strain is outside the linear range, the cell is far from zero stress, or the stresses are noisy.
    The moduli are Voigt (uniform strain), Reuss (uniform stress) and their Hill average; for a cubic
    crystal all three bulk moduli are ``(C11 + 2 C12) / 3``.
    """

    matrix: np.ndarray
    asymmetry: float = 0.0

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=float)
        if self.matrix.shape != (6, 6):
            raise ValueError(f'an elastic matrix is 6x6 (Voigt), got shape {self.matrix.shape}')

    @property
    def compliance(self) -> np.ndarray:
        """``S = C^-1`` in 1/GPa (NaN where C is singular)."""
        try:
            return np.linalg.inv(self.matrix)
        except np.linalg.LinAlgError:
            return np.full((6, 6), math.nan)

    @property
    def bulk_modulus_voigt(self) -> float:
        c = self.matrix
        return float((c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9)

    @property
    def shear_modulus_voigt(self) -> float:
        c = self.matrix
        normal = c[0, 0] + c[1, 1] + c[2, 2]
        return float((normal - (c[0, 1] + c[1, 2] + c[0, 2]) + 3 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15)

    @property
    def bulk_modulus_reuss(self) -> float:
        s = self.compliance
        return float(1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[1, 2] + s[0, 2])))

    @property
    def shear_modulus_reuss(self) -> float:
        s = self.compliance
        normal = s[0, 0] + s[1, 1] + s[2, 2]
        return float(15 / (4 * normal - 4 * (s[0, 1] + s[1, 2] + s[0, 2]) + 3 * (s[3, 3] + s[4, 4] + s[5, 5])))

    @property
    def bulk_modulus(self) -> float:
        """Voigt-Reuss-Hill bulk modulus in GPa."""
        return (self.bulk_modulus_voigt + self.bulk_modulus_reuss) / 2

    @property
    def shear_modulus(self) -> float:
        """Voigt-Reuss-Hill shear modulus in GPa."""
        return (self.shear_modulus_voigt + self.shear_modulus_reuss) / 2

    def to_dict(self) -> dict:
        """Plain JSON-able values: the matrix and asymmetry (which :meth:`from_dict` reads) and the moduli."""
        return {
            'matrix': self.matrix.tolist(),
            'asymmetry': float(self.asymmetry),
            'bulk_modulus': self.bulk_modulus,
            'shear_modulus': self.shear_modulus,
            'bulk_modulus_voigt': self.bulk_modulus_voigt,
            'bulk_modulus_reuss': self.bulk_modulus_reuss,
            'shear_modulus_voigt': self.shear_modulus_voigt,
            'shear_modulus_reuss': self.shear_modulus_reuss,
            'unit': 'GPa',
        }

    @classmethod
    def from_dict(cls, values: Mapping) -> ElasticConstants:
        return cls(matrix=np.asarray(values['matrix'], dtype=float), asymmetry=float(values.get('asymmetry', 0.0)))


def elastic_constants(stresses: Mapping[str, np.ndarray], strain: float) -> ElasticConstants:
    """Elastic constants in GPa from the stresses of the 12 strained cells (keys ``'e1+'`` ... ``'e6-'``).

    ``C_ij = (sigma_i(+e_j) - sigma_i(-e_j)) / (2 strain)``: a central difference, so a residual stress
    of the unstrained cell cancels to first order. Stresses are in eV/Å^3 with ASE's (tensile) sign,
    3x3 or Voigt 6; a stress with the pressure sign (as QE and VASP print it) gives negative constants.
    """
    if not (math.isfinite(strain) and strain > 0):
        raise ValueError(f'the strain amplitude must be above 0, got {strain!r}')
    expected = [strain_label(component, sign) for component in range(6) for sign in (1, -1)]
    missing = [key for key in expected if key not in stresses]
    if missing:
        raise ValueError(f'stresses of the strained cells {missing} are missing (expected keys {expected})')
    raw = np.empty((6, 6))
    for component in range(6):
        plus, minus = voigt(stresses[strain_label(component, 1)]), voigt(stresses[strain_label(component, -1)])
        raw[:, component] = (plus - minus) / (2 * strain) / units.GPa
    return ElasticConstants(matrix=(raw + raw.T) / 2, asymmetry=float(np.abs(raw - raw.T).max() / 2))


def zero_stress_cell(cell, stress, elastic_matrix_gpa: np.ndarray | ElasticConstants) -> np.ndarray:
    """The linear estimate of the cell at zero stress: one Newton step from ``cell`` under ``stress``.

    The Voigt strain that cancels the stress is ``eps = -C^-1 sigma`` (``sigma`` in eV/Å^3 with ASE's
    sign, converted to GPa like ``C``); its shears are engineering ones, halved into the symmetric
    tensor, and the cell (rows are lattice vectors, Å) becomes ``cell @ (I + eps)``. A stretched cell
    (tensile, positive stress) shrinks. The error is second order in the strain: for a volume strain
    ``eps_V`` the volume is off by about ``B' eps_V^2 / 2`` relative (``B'`` the pressure derivative of the
    bulk modulus, about 5), 2e-3 for 1 % on every axis. Where that matters, relax instead, or repeat the
    step from the estimated cell.
    """
    matrix = elastic_matrix_gpa.matrix if isinstance(elastic_matrix_gpa, ElasticConstants) else elastic_matrix_gpa
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (6, 6):
        raise ValueError(f'an elastic matrix is 6x6 (Voigt), got shape {matrix.shape}')
    strain = -np.linalg.solve(matrix, voigt(stress) / units.GPa)
    eps = np.diag(strain[:3])
    for (row, column), gamma in zip(VOIGT_INDICES[3:], strain[3:], strict=True):
        eps[row, column] = eps[column, row] = gamma / 2
    return np.asarray(cell, dtype=float) @ (np.eye(3) + eps)


def lattice_parameters(cell) -> dict[str, float]:
    """``a, b, c`` (Å, lengths of the three cell rows) and ``alpha, beta, gamma`` (degrees, between b-c, a-c, a-b)."""
    values = Cell(np.asarray(cell, dtype=float)).cellpar()
    return {name: float(value) for name, value in zip(('a', 'b', 'c', 'alpha', 'beta', 'gamma'), values, strict=True)}


def gamma_frequencies(phonon: Phonopy, forces: Iterable[np.ndarray], reference_forces=None) -> np.ndarray:
    """The 3N Gamma frequencies in THz (ascending; imaginary ones negative, as phonopy gives them).

    ``forces`` (eV/Å) are those of ``phonon``'s displaced supercells, in the order of
    :func:`.structures.phonon_displacements`. ``reference_forces``, the forces of the undisplaced
    supercell, are subtracted where given: needed where the structure is not at equilibrium for the
    calculator that gave the forces (a model at the DFT geometry) and phonopy displaced one way only.
    No non-analytic correction is made: polar Gamma modes are the transverse ones (no LO-TO splitting),
    the same for both sides. ``phonon`` is not changed (a copy gets the force constants).
    """
    displaced = phonon.supercells_with_displacements
    forces = np.asarray(list(forces), dtype=float)
    expected = (len(displaced), len(phonon.supercell), 3)
    if forces.shape != expected:
        raise ValueError(
            f'forces of shape {expected} are needed ({expected[0]} displaced supercells of {expected[1]} atoms), '
            f'got {forces.shape}'
        )
    if reference_forces is not None:
        forces = forces - np.asarray(reference_forces, dtype=float)[None]
    phonon, dataset = phonon.replicate(), copy.deepcopy(phonon.dataset)  # replicate() drops the displacements
    phonon.dataset = dataset
    phonon.forces = forces
    phonon.produce_force_constants()
    return np.sort(np.asarray(phonon.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0], dtype=float))


def calculated_stresses(cells: Mapping[str, Atoms], calculator: BaseCalculator) -> dict[str, np.ndarray]:
    """The model side of :func:`elastic_constants`: the 3x3 stress (eV/Å^3, ASE sign) of every cell."""
    stresses = {}
    for key, atoms in cells.items():
        atoms = atoms.copy()
        atoms.calc = calculator
        stresses[key] = atoms.get_stress(voigt=False)
    return stresses


def calculated_forces(images: Iterable[Atoms], calculator: BaseCalculator) -> list[np.ndarray]:
    """The model side of :func:`gamma_frequencies` (and of a force RMSE): the forces (eV/Å) of every image."""
    forces = []
    for atoms in images:
        atoms = atoms.copy()
        atoms.calc = calculator
        forces.append(atoms.get_forces())
    return forces


def relax_cell(atoms: Atoms, calculator: BaseCalculator, fmax: float = 0.005, steps: int = 500) -> Atoms:
    """A copy of ``atoms`` with cell and positions relaxed to zero stress and forces by ``calculator``.

    BFGS on a :class:`~ase.filters.FrechetCellFilter`: ``fmax`` (eV/Å) bounds the atomic forces and the
    cell's generalised forces ``V sigma / N``, i.e. the stress to ``fmax N / V``. The copy keeps the
    calculator. Raises ``ValueError`` when not converged within ``steps``: a model whose structure does
    not relax has failed the lattice check, and a half-relaxed cell must not be compared as if it had.
    """
    relaxed = atoms.copy()
    relaxed.calc = calculator
    optimizer = BFGS(FrechetCellFilter(relaxed), logfile=None)
    if not optimizer.run(fmax=fmax, steps=steps):
        force = float(np.linalg.norm(relaxed.get_forces(), axis=1).max()) if len(relaxed) else 0.0
        stress = float(np.abs(relaxed.get_stress()).max() / units.GPa)
        raise ValueError(
            f'the cell relaxation did not converge within {steps} steps to fmax {fmax} eV/Å '
            f'(largest force {force:.4g} eV/Å, largest stress {stress:.4g} GPa)'
        )
    return relaxed


def _born_stack(born, name: str) -> np.ndarray:
    born = np.asarray(born, dtype=float)
    if born.ndim == 3:
        born = born[None]
    if born.ndim != 4 or born.shape[-2:] != (3, 3):
        raise ValueError(f'{name} Born charges must be (N, 3, 3) or (frames, N, 3, 3), got shape {born.shape}')
    return np.array([asr_corrected(frame) for frame in born])


def born_charge_rmse(model, dft) -> float:
    """RMSE in e over every tensor element of the model's Born charges against DFT's, both sum-rule corrected.

    Each side is corrected (mean over atoms subtracted, :func:`~ionfield.models.data.born.asr_corrected`)
    before the comparison, so DFPT's numerical sum-rule violation is not counted as a model error.
    Arrays ``(N, 3, 3)`` of one structure or ``(frames, N, 3, 3)`` of several, the same shape on both sides.
    """
    model, dft = _born_stack(model, 'model'), _born_stack(dft, 'DFT')
    if model.shape != dft.shape:
        raise ValueError(f'model and DFT Born charges differ in shape: {model.shape} and {dft.shape}')
    return float(np.sqrt(np.mean((model - dft) ** 2)))


def force_rmse(model: Iterable[np.ndarray], dft: Iterable[np.ndarray]) -> float:
    """RMSE in eV/Å over every force component of the frames (same atoms, same order on both sides)."""
    model = np.concatenate([np.asarray(f, dtype=float).reshape(-1, 3) for f in model])
    dft = np.concatenate([np.asarray(f, dtype=float).reshape(-1, 3) for f in dft])
    if model.shape != dft.shape:
        raise ValueError(f'model and DFT forces differ in shape: {model.shape} and {dft.shape}')
    return float(np.sqrt(np.mean((model - dft) ** 2)))
