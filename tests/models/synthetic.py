"""Synthetic but learnable labelled frames for training tests (no DFT needed).

Energies, forces and stress come from ASE's Lennard-Jones on rattled alpha-Li3N supercells;
Born charges are an equivariant function of the environment,
Z_i = q_i I + a Σ_j f(r_ij) (r̂ r̂ᵀ - I/3) + b Σ_j f(r_ij) [r̂]_x (a symmetric and an
antisymmetric part), corrected to the sum rule. Real (QE) data are used for the measures;
these frames only prove the pipeline learns what it is given.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.lj import LennardJones
from ase.neighborlist import neighbor_list

from ionfield.models.data import Dataset, Frame, asr_corrected
from ionfield.models.structures.reference import alpha_li3n

NOMINAL = {'Li': 1.0, 'N': -3.0}


def synthetic_born_charges(atoms, cutoff: float = 3.0) -> np.ndarray:
    z = np.array([NOMINAL[s] * np.eye(3) for s in atoms.get_chemical_symbols()])
    i, j, d, dist = neighbor_list('ijDd', atoms, cutoff)
    weight = (1 - dist / cutoff) ** 2
    unit = d / dist[:, None]
    sym = np.einsum('k,ka,kb->kab', weight, unit, unit) - weight[:, None, None] * np.eye(3) / 3
    skew = np.zeros((len(i), 3, 3))
    skew[:, 0, 1], skew[:, 1, 0] = unit[:, 2] * weight, -unit[:, 2] * weight
    np.add.at(z, i, 0.4 * sym + 0.1 * skew)
    return asr_corrected(z)


def synthetic_dataset(n_frames: int = 24, seed: int = 0, repeat=(2, 1, 1), bec_share: float = 1.0) -> Dataset:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_frames):
        atoms = alpha_li3n().repeat(repeat)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        atoms.set_cell(atoms.cell * (1 + rng.normal(scale=0.01)), scale_atoms=True)
        atoms.calc = LennardJones(sigma=1.8, epsilon=0.05, rc=4.0, smooth=True)
        born = synthetic_born_charges(atoms) if rng.random() < bec_share or k == 0 else None
        frames.append(
            Frame(
                numbers=atoms.numbers,
                positions=atoms.positions,
                cell=np.array(atoms.cell),
                pbc=True,
                energy=atoms.get_potential_energy(),
                forces=atoms.get_forces(),
                stress=atoms.get_stress(voigt=False),
                **({'born_charges': born} if born is not None else {}),
            )
        )
    return Dataset(frames)
