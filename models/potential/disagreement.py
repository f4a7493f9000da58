"""Committee disagreement: the uncertainty measure of active learning and field MD.

Members are models trained on the same data with different seeds. For one frame with N atoms
and M members (forces F^m_i, Born charges Z^m_i):

* energy: mean and standard deviation over members, per atom;
* ``max_force_deviation`` = max_i sqrt(<|F_i - <F_i>|²>) (DP-GEN's model_devi_f, eV/Å);
* ``max_bec_deviation``   = max_i sqrt(<||Z_i - <Z_i>||²_F>) (Frobenius norm, e).

Plain Python: usable in a notebook, in our MD engine and in the selection step alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ionfield.models.keys import BORN_CHARGES

from .calculator import load_calculator, model_type_names


class CommitteeError(ValueError):
    """A committee that cannot measure disagreement (too few or inconsistent members)."""


@dataclasses.dataclass
class FramePrediction:
    """Committee mean and spread for one frame."""

    energy: float
    energy_std_per_atom: float
    forces: np.ndarray
    max_force_deviation: float
    born_charges: np.ndarray | None
    max_bec_deviation: float | None


def force_deviation(forces: np.ndarray) -> np.ndarray:
    """Per-atom force deviation sqrt(<|F_i - <F_i>|²>) from member forces (M, N, 3)."""
    forces = np.asarray(forces, dtype=float)
    return np.sqrt(np.mean(np.sum((forces - forces.mean(axis=0)) ** 2, axis=-1), axis=0))


def bec_deviation(born: np.ndarray) -> np.ndarray:
    """Per-atom Z* deviation sqrt(<||Z_i - <Z_i>||²_F>) from member charges (M, N, 3, 3)."""
    born = np.asarray(born, dtype=float)
    return np.sqrt(np.mean(np.sum((born - born.mean(axis=0)) ** 2, axis=(-2, -1)), axis=0))


def combine(
    energies: Sequence[float], forces: Sequence[np.ndarray], borns: Sequence[np.ndarray | None]
) -> FramePrediction:
    """Reduce member predictions for one frame to a :class:`FramePrediction`."""
    energies = np.asarray(energies, dtype=float)
    forces = np.asarray(forces, dtype=float)
    natoms = forces.shape[1]
    have_born = all(b is not None for b in borns)
    born = np.asarray(borns, dtype=float) if have_born else None
    return FramePrediction(
        energy=float(energies.mean()),
        energy_std_per_atom=float(energies.std() / natoms),
        forces=forces.mean(axis=0),
        max_force_deviation=float(force_deviation(forces).max()),
        born_charges=born.mean(axis=0) if have_born else None,
        max_bec_deviation=float(bec_deviation(born).max()) if have_born else None,
    )


class CommitteeEvaluator:
    """Evaluate several models on the same frames and report mean and spread."""

    def __init__(self, model_paths: Sequence[str | Path], device: str = 'cpu', has_bec: bool = True):
        paths = [Path(p) for p in model_paths]
        if len(paths) < 2:
            raise CommitteeError(f'a committee needs at least 2 members to measure disagreement, got {len(paths)}')
        self.calculators = [load_calculator(path, device=device, has_bec=has_bec) for path in paths]
        self.has_bec = has_bec
        type_sets = {tuple(model_type_names(calc)) for calc in self.calculators}
        if len(type_sets) > 1:
            raise CommitteeError(f'committee members know different species: {sorted(type_sets)}')
        self.type_names = list(next(iter(type_sets)))

    def __len__(self) -> int:
        return len(self.calculators)

    def evaluate(self, frames: Iterable[Atoms]) -> list[FramePrediction]:
        results = []
        for atoms in frames:
            unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.type_names))
            if unknown:
                raise CommitteeError(f'species {unknown} are not known to the committee ({self.type_names})')
            energies, forces, borns = [], [], []
            for calc in self.calculators:
                work = atoms.copy()
                work.calc = calc
                energies.append(work.get_potential_energy())
                forces.append(work.get_forces())
                borns.append(calc.results.get(BORN_CHARGES) if self.has_bec else None)
            results.append(combine(energies, forces, borns))
        return results
