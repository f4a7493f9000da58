"""Point defects that leave a cell DFT can label as an insulator, and the charge each cell carries.

A transport campaign needs carriers: Li3N conducts through Li vacancies. But a vacancy made by deleting
a neutral atom leaves its electron's partner state empty, a hole in the anion p band, and a cell that DFT
sees as a metal (no gap, no Born charges, and a local model trained on it learns a metal). There are two
physical ways out, and :class:`DefectSpec` names them:

- ``charged``: remove ``count`` ions of the mobile species *as ions*: the cell keeps the anion band full
  and carries a net charge, compensated in DFT by a uniform background (QE ``tot_charge``); its value is
  :func:`formal_charge` of the cell (the sum of formal oxidation states: -1 for Li3N less one Li).
  Energies of charged periodic cells carry a finite-size error (Makov-Payne, ~q^2/(eps L)) that is the
  same for every frame of one cell, so forces and the dynamics are unaffected; energies compare only
  between cells of the same charge.
- ``frenkel``: move ``count`` mobile ions into interstitial sites (vacancy + interstitial): stoichiometric,
  neutral, insulating; the cell's carriers are the vacancy and the interstitial, which can recombine.
- ``schottky``: remove ``count`` formula units (an anion and its nearest cations in stoichiometric
  proportion): neutral and insulating, vacancies of both kinds.
- ``none``: the perfect crystal (no carriers; interstitial-free diffusion only at high T).

Every cell made here records its defect in ``atoms.info['defect']`` (mode, species, indices, charge).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

import numpy as np
from ase import Atoms

from .sampling import _derived_info

__all__ = ('DEFECT_MODES', 'DefectError', 'DefectSpec', 'formal_charge', 'make_defect', 'oxidation_states')

DEFECT_MODES = ('none', 'charged', 'frenkel', 'schottky')


class DefectError(ValueError):
    """A defect that cannot be made, or could not be labelled as an insulator; the message says why."""


@dataclasses.dataclass(frozen=True)
class DefectSpec:
    """What to do to a supercell before it is explored and simulated."""

    mode: str = 'charged'
    species: str = 'Li'
    count: int = 1

    def __post_init__(self):
        if self.mode not in DEFECT_MODES:
            raise DefectError(f'unknown defect mode `{self.mode}`; known: {", ".join(DEFECT_MODES)}')
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 0:
            raise DefectError(f'the defect count must be a non-negative integer, got {self.count!r}')
        if self.mode != 'none' and self.count == 0:
            raise DefectError(f'a `{self.mode}` defect needs count >= 1 (or mode `none`)')

    @property
    def charged(self) -> bool:
        """Whether the defect cell carries a net charge (a compensating background in DFT)."""
        return self.mode == 'charged'

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def oxidation_states(atoms: Atoms, given: Mapping[str, float] | None = None) -> dict[str, float]:
    """Formal oxidation state of each element of ``atoms``: ``given`` where it says, else pymatgen's best guess.

    The guess is made on the composition (a stoichiometric cell guesses right for ionic crystals: Li +1,
    N -3, P +5, O -2, Ag +1, I -1); a composition it cannot balance is an error naming ``oxidation_states``.
    """
    elements = sorted(set(atoms.get_chemical_symbols()))
    states = {element: float(value) for element, value in (given or {}).items()}
    missing = [element for element in elements if element not in states]
    if missing:
        from pymatgen.core import Composition

        guesses = Composition(dict(Counter(atoms.get_chemical_symbols()))).oxi_state_guesses(max_sites=-50)
        if not guesses:
            raise DefectError(
                f'no formal oxidation states balance {atoms.get_chemical_formula()}: give `oxidation_states` '
                f'for {missing}'
            )
        states.update({element: float(guesses[0][element]) for element in missing})
    return {element: states[element] for element in elements}


def formal_charge(atoms: Atoms, states: Mapping[str, float]) -> float:
    """The net charge of the cell in e if every atom carried its formal oxidation state (0 for a neutral crystal)."""
    missing = sorted(set(atoms.get_chemical_symbols()) - set(states))
    if missing:
        raise DefectError(f'no oxidation state for {missing}')
    return float(sum(states[symbol] for symbol in atoms.get_chemical_symbols()))


def make_defect(atoms: Atoms, spec: DefectSpec, seed: int = 0, states: Mapping[str, float] | None = None) -> Atoms:
    """``atoms`` (a supercell of a neutral crystal) with the defect of ``spec``; ``info['defect']`` says what.

    The sites are drawn with ``seed``. ``states`` are the formal oxidation states (guessed when absent); a
    cell that is not neutral before the defect is refused, since then no defect mode makes it insulating.
    """
    states = oxidation_states(atoms, states)
    base = formal_charge(atoms, states)
    if abs(base) > 1e-6:
        raise DefectError(
            f'{atoms.get_chemical_formula()} is not charge-neutral with oxidation states {states} (net {base:+g} e)'
        )
    mobile = [atom.index for atom in atoms if atom.symbol == spec.species]
    if spec.mode != 'none' and not mobile:
        raise DefectError(f'{atoms.get_chemical_formula()} has no {spec.species} to make a defect of')
    if spec.mode in ('charged', 'frenkel') and len(mobile) <= spec.count:
        raise DefectError(f'cannot take {spec.count} {spec.species} of {len(mobile)}')
    if spec.mode != 'none' and states[spec.species] == 0:
        raise DefectError(f'{spec.species} has oxidation state 0: its vacancy cannot be charged or balanced')
    rng = np.random.default_rng(seed)
    record: dict = {'mode': spec.mode, 'species': spec.species, 'count': spec.count}
    if spec.mode == 'none':
        result = atoms.copy()
    elif spec.mode == 'charged':
        removed = sorted(rng.choice(mobile, size=spec.count, replace=False).tolist())
        result = _without(atoms, removed)
        record['removed'] = removed
    elif spec.mode == 'frenkel':
        moved = sorted(rng.choice(mobile, size=spec.count, replace=False).tolist())
        result = atoms.copy()
        sites = []
        for index in moved:
            site = _interstitial_site(result, exclude=index, vacancy=atoms.positions[index])
            result.positions[index] = site
            sites.append(site.tolist())
        record.update({'moved': moved, 'vacancies': [atoms.positions[i].tolist() for i in moved], 'sites': sites})
    else:
        removed = _formula_units(atoms, spec, states, rng)
        result = _without(atoms, removed)
        record['removed'] = removed
    record['charge'] = formal_charge(result, states)
    result.info = {**_derived_info(atoms), 'defect': record, 'oxidation_states': dict(states)}
    return result


def _without(atoms: Atoms, indices: list[int]) -> Atoms:
    drop = set(indices)
    return atoms[[i for i in range(len(atoms)) if i not in drop]]


def _interstitial_site(atoms: Atoms, exclude: int, vacancy: np.ndarray, spacing: float = 0.2) -> np.ndarray:
    """The point of the cell farthest from every atom but ``exclude``, and at least 3 Å from its vacancy.

    A grid search (``spacing`` Å) with the minimum-image distance: the largest empty void, where an
    interstitial ion sits in a relaxed cell before MD moves it on. Close to its own vacancy it would
    recombine at once, hence the exclusion.
    """
    from ase.geometry import get_distances

    cell = atoms.cell
    counts = np.maximum(1, np.ceil(cell.lengths() / spacing).astype(int))
    grid = np.stack(np.meshgrid(*(np.arange(n) / n for n in counts), indexing='ij'), axis=-1).reshape(-1, 3)
    points = grid @ cell.array
    others = np.delete(atoms.positions, exclude, axis=0)
    best_point, best_distance = None, -1.0
    for chunk in np.array_split(points, max(1, len(points) // 4000)):
        _, distances = get_distances(chunk, others, cell=cell, pbc=atoms.pbc)
        nearest = distances.min(axis=1)
        _, from_vacancy = get_distances(chunk, vacancy[None, :], cell=cell, pbc=atoms.pbc)
        nearest[from_vacancy[:, 0] < 3.0] = -1.0
        k = int(np.argmax(nearest))
        if nearest[k] > best_distance:
            best_point, best_distance = chunk[k], float(nearest[k])
    if best_distance <= 0:
        raise DefectError(
            'no interstitial site at least 3 Å from the vacancy: the cell is too small for a Frenkel pair'
        )
    return best_point


def _formula_units(atoms: Atoms, spec: DefectSpec, states: Mapping[str, float], rng) -> list[int]:
    """Indices of ``spec.count`` formula units: a random anion each, with its nearest atoms of every other element."""
    from math import gcd

    from ase.geometry import get_distances

    counts = Counter(atoms.get_chemical_symbols())
    divisor = 0
    for value in counts.values():
        divisor = gcd(divisor, value)
    unit = {element: value // divisor for element, value in counts.items()}
    if divisor <= spec.count:
        raise DefectError(f'the cell has {divisor} formula unit(s): cannot remove {spec.count}')
    anions = sorted((e for e in unit if states[e] < 0), key=lambda e: states[e])
    if not anions:
        raise DefectError('a Schottky defect needs an anion')
    centre_element = anions[0]
    removed: list[int] = []
    centres = [a.index for a in atoms if a.symbol == centre_element]
    for centre in rng.permutation(centres)[: spec.count]:
        if centre in removed:
            continue
        chosen = [int(centre)]
        for element, number in unit.items():
            need = number - (1 if element == centre_element else 0)
            if need <= 0:
                continue
            candidates = [a.index for a in atoms if a.symbol == element and a.index not in removed + chosen]
            _, distances = get_distances(
                atoms.positions[[centre]], atoms.positions[candidates], cell=atoms.cell, pbc=True
            )
            chosen += [candidates[i] for i in np.argsort(distances[0])[:need]]
        removed += chosen
    return sorted(removed)
