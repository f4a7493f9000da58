"""VASP outputs (as parsed by aiida-vasp / parsevasp from ``vasprun.xml`` and ``OUTCAR``) in the project's units.

Plain numpy (parsevasp only for :func:`labels_from_vasprun`), so the conversions are tested on real VASP
outputs without running VASP. Every statement below is checked on data in ``tests/models/labels/test_vasp.py``
(the shared VASP 5.4 runs in ``../shared/data/vasp-dfpt``: ``bec_full`` is a LEPSILON run, IBRION=-1, on a
26-atom tetragonal P-S-Zn crystal; ``disp_details`` an IBRION=6, ISIF=3 finite-difference run on Si).

Energy
    ``energy_free`` (VASP ``TOTEN``, vasprun ``e_fr_energy``: the Mermin free energy). VASP's forces and stress
    are derivatives of this functional, so it is the only energy consistent with the force and stress labels
    (ASE calls it the force-consistent energy for the same reason); ``energy(sigma->0)`` is an extrapolation
    whose derivatives are not the printed forces. For an insulator with ISMEAR=0 and a small SIGMA the three
    VASP energies coincide (``bec_full``: all -115.01774737 eV); for a smeared metal they do not (``localfield``,
    SIGMA=0.2: free -42.91232, sigma->0 -42.91114, no-entropy -42.90995 eV). VASP 5 also mislabels the other two
    in vasprun.xml's ionic-step block (``localfield``: ``e_wo_entrp`` holds sigma->0 and ``e_0_energy`` the
    entropy term, -0.00237 eV; aiida-vasp remaps them); ``e_fr_energy`` is right. The workchain asks aiida-vasp's
    parser for ``energy_free`` (parser setting ``energy_type``; its default is sigma->0).

Forces
    eV/Å, physical forces ``F = -dE/dR``, unchanged. Data: in ``disp_details`` displacing a Si atom by +0.015 Å
    along x gives it a force of -0.2132 eV/Å (restoring) and raises the energy by 0.0015988 eV, which is the
    harmonic ``-F·u/2`` = 0.0015989 eV.

Stress
    vasprun ``stress`` (= OUTCAR ``in kB`` line) is in kbar with VASP's sign, the opposite of ASE's:
    ``stress = -stress_vasp / 1602.1766208`` eV/Å^3 (1 eV/Å^3 = 160.21766208 GPa = 1602.1766208 kbar). Data:
    (1) the OUTCAR ``FORCE on cell =-STRESS`` table prints the ``Alpha Z`` term as +445.08850 eV on each diagonal
    component, equal to the ``alpha Z PSCENC`` energy +445.08850385 eV; that energy is exactly proportional to
    1/V, so ``dE/d(strain_aa) = -E``: the printed (and ``in kB``) stress is ``-dE/d(strain)/V``, minus ASE's
    ``(1/V) dE/d(strain)``. (2) In ``disp_details`` the central difference of the free energy under +-1.5 %
    strain, ``E(+e) - E(-e)`` = -0.031034 eV, equals ``2 e V stress_ase`` of the unstrained cell = -0.030980 eV
    (VASP +42.28 kbar -> ASE -0.02639 eV/Å^3: the compressed Si cell lowers its energy by expanding), 0.2 % apart.

Born charges
    aiida-vasp's ``born_charges`` (``(N, 3, 3)``, parsevasp's reading of vasprun ``<array name="born_charges">``,
    ion by ion, one ``<v>`` per row) is ``Z[i, a, b]`` with row ``a`` the electric-field (polarization)
    direction and column ``b`` the displacement (force) direction: the project's
    :data:`~ionfield.models.data.dataset.BORN_CHARGE_CONVENTION` as is, no transpose. Evidence, from the ``bec_full``
    OUTCAR: VASP computes Z* in LEPSILON as the force response to a field. For each field direction it prints
    ``PIEZOELECTRIC TENSOR FIELD DIRECTION a`` and then ``POSITION DIRECTION a BORN EFFECTIVE CHARGE``, three
    numbers per ion whose sum over ions it calls the ``total drift`` (the name it gives the sum of the
    forces): the three columns are force components, the block index is the field. Row ``a`` of the final
    ``BORN EFFECTIVE CHARGES (cummulative output)`` table equals block ``a`` (to 1e-5 after the shift below),
    while column ``a`` differs by up to 0.98 e; vasprun ``born_charges`` equals that table to 5e-6 (and ASE's
    independent vasprun reader returns the same array). QE's ph.x rows are the field direction too.
    The data allow no finite-displacement check: no shared run has polarization (LCALCPOL) or field (EFIELD_PEAD)
    outputs for displaced structures; ``disp_details`` is Si, whose Z* and ionic dielectric tensor vanish by
    symmetry, so a Z* -> eps_ion check cannot tell Z from Z^T; ``localfield``/``disp`` (one system, Z* and force
    constants) has partly occupied states (SIGMA=0.2) and no ionic dielectric tensor to compare with.

    VASP imposes the acoustic sum rule before writing: the final table (and vasprun) is the per-direction response
    minus its ``total drift / N`` (``bec_full``: drift up to -0.135 e at 3x3x2 k-points, "improves with k-points",
    says VASP). The project stores raw tensors and derives the corrected ones
    (:func:`~ionfield.models.data.dataset.asr_corrected`), so :func:`born_charges_from_vasp` restores the raw tensors
    from the OUTCAR blocks when they are there and agree with vasprun; otherwise (OUTCAR missing or in another
    layout) the sum-rule-corrected vasprun tensors are used and the function says so.

eps_inf
    vasprun ``epsilon`` (aiida-vasp ``dielectrics`` array ``epsilon``): OUTCAR ``MACROSCOPIC STATIC DIELECTRIC
    TENSOR (including local field effects in DFT)`` (``bec_full``: 5.894, 5.894, 6.172). It is the clamped-ion,
    electronic tensor: in an IBRION=-1 run the ions do not move, and runs that do move them (IBRION=5-8) write the
    ionic part separately as ``epsilon_ion`` (``disp_details``). ``epsilon_rpa`` is the independent-particle
    tensor without local fields (``HEAD OF MICROSCOPIC STATIC DIELECTRIC TENSOR (INDEPENDENT PARTICLE ...)``,
    6.948) and is not used; VASP 6 writes the same tensor also as ``dielectric_dft``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import re
from collections.abc import Mapping

import numpy as np

__all__ = (
    'KBAR_PER_EV_PER_A3',
    'BandEdges',
    'band_edges',
    'born_charges_from_vasp',
    'energy_from_vasp',
    'eps_inf_from_vasp',
    'forces_from_vasp',
    'labels_from_vasprun',
    'raw_born_charges_from_outcar',
    'stress_from_vasp',
)

KBAR_PER_EV_PER_A3 = 1602.1766208
"""1 eV/Å^3 in kbar (VASP's stress unit)."""

ENERGY_TYPE = 'energy_free'
"""The aiida-vasp energy type used as the label (``TOTEN``, the force-consistent free energy)."""

ASR_CONSISTENCY = 5e-4
"""Largest |raw - mean(raw) - vasprun| (e) for OUTCAR blocks to count as the same Born charges as vasprun's."""

_DIRECTION_BLOCK = re.compile(r'^\s*POSITION\s+DIRECTION\s+([123])\s+BORN EFFECTIVE CHARGE')
_NUMBER = r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?'


def energy_from_vasp(total_energies: Mapping) -> float:
    """The label energy (eV) from aiida-vasp's ``misc['total_energies']``: ``energy_free`` (see module docstring)."""
    if ENERGY_TYPE not in total_energies:
        raise ValueError(
            f'no `{ENERGY_TYPE}` in the parsed energies ({", ".join(sorted(total_energies))}): '
            f"run with settings `parser_settings: {{energy_type: ['{ENERGY_TYPE}']}}`"
        )
    energy = float(total_energies[ENERGY_TYPE])
    if not math.isfinite(energy):
        raise ValueError(f'the VASP energy is not finite: {energy}')
    return energy


def forces_from_vasp(forces, natoms: int) -> np.ndarray:
    """VASP forces (eV/Å, ``-dE/dR``) as an ``(natoms, 3)`` array; no conversion is needed."""
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (natoms, 3):
        raise ValueError(f'VASP forces have shape {forces.shape}, expected ({natoms}, 3)')
    return forces


def stress_from_vasp(stress_kbar) -> np.ndarray:
    """VASP stress (kbar, VASP's sign: positive when the cell pushes outwards) -> eV/Å^3 with ASE's sign."""
    stress = np.asarray(stress_kbar, dtype=float)
    if stress.shape == (6,):  # VASP's own order xx yy zz xy yz zx
        xx, yy, zz, xy, yz, zx = stress
        stress = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
    if stress.shape != (3, 3):
        raise ValueError(f'VASP stress has shape {stress.shape}, expected (3, 3)')
    return -stress / KBAR_PER_EV_PER_A3


def raw_born_charges_from_outcar(outcar: str, natoms: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Born charges before VASP's sum-rule correction, from the OUTCAR's per-field-direction blocks.

    Returns ``(born, drift)``: ``born[i, a, b]`` the response of the force component ``b`` on ion ``i`` to a
    field along ``a`` (in e), and ``drift[a, b] = sum_i born[i, a, b]`` as VASP prints it; ``None`` when the
    OUTCAR has no complete set of the three blocks (the last complete set is used when there are several).
    """
    lines = outcar.splitlines()
    blocks: dict[int, np.ndarray] = {}
    complete = None
    for index, line in enumerate(lines):
        match = _DIRECTION_BLOCK.match(line)
        if not match:
            continue
        direction = int(match.group(1)) - 1
        block = _read_direction_block(lines, index + 2, natoms)
        if block is None:
            continue
        blocks[direction] = block
        if direction == 2 and set(blocks) == {0, 1, 2}:
            complete = dict(blocks)
            blocks = {}
    if complete is None:
        return None
    born = np.stack([complete[direction] for direction in range(3)], axis=1)
    drift = born.sum(axis=0)
    return born, drift


def _read_direction_block(lines: list[str], start: int, natoms: int) -> np.ndarray | None:
    """The ``(natoms, 3)`` numbers of one block: columns 4-6 of each ion line (after x, y, z positions)."""
    if start + natoms > len(lines):
        return None
    rows = []
    for line in lines[start : start + natoms]:
        numbers = re.findall(_NUMBER, line.split('(')[0])
        if len(numbers) < 6:
            return None
        rows.append([float(value) for value in numbers[3:6]])
    return np.array(rows)


def born_charges_from_vasp(born, natoms: int, outcar: str | None = None) -> tuple[np.ndarray, str]:
    """``Z[i, a, b]`` in e from aiida-vasp's ``born_charges`` (rows: field), raw when the OUTCAR allows.

    Returns ``(born_charges, source)`` with ``source`` ``'outcar-raw'`` (the sum rule not imposed, as the
    project stores) or ``'vasprun-asr'`` (VASP's sum-rule-corrected tensors, when ``outcar`` is not given, has
    no per-direction blocks, or its blocks do not reproduce vasprun's tensors after the correction).
    """
    born = np.asarray(born, dtype=float)
    if born.shape != (natoms, 3, 3):
        raise ValueError(f'VASP Born charges have shape {born.shape}, expected ({natoms}, 3, 3)')
    if outcar:
        raw = raw_born_charges_from_outcar(outcar, natoms)
        if raw is not None:
            raw_born, _ = raw
            if np.abs(raw_born - raw_born.mean(axis=0) - born).max() <= ASR_CONSISTENCY:
                return raw_born, 'outcar-raw'
    return born, 'vasprun-asr'


def eps_inf_from_vasp(dielectrics: Mapping) -> np.ndarray:
    """eps_inf (3x3) from aiida-vasp's ``dielectrics``: ``epsilon`` (electronic, clamped ions, with local fields).

    ``epsilon_ion`` (the ionic part) and ``epsilon_rpa`` (no local field effects) are deliberately not used.
    """
    if 'epsilon' not in dielectrics:
        raise ValueError(
            f'no `epsilon` among the dielectric arrays ({", ".join(sorted(dielectrics))}): was LEPSILON set?'
        )
    eps = np.asarray(dielectrics['epsilon'], dtype=float)
    if eps.shape != (3, 3):
        raise ValueError(f'VASP epsilon has shape {eps.shape}, expected (3, 3)')
    return eps


@dataclasses.dataclass(frozen=True)
class BandEdges:
    """Band edges from eigenvalues and occupations (eV); a gap <= 0 or partial occupations mean a metal."""

    vbm: float
    cbm: float
    partial_occupations: bool

    @property
    def gap(self) -> float:
        return self.cbm - self.vbm

    def is_metal(self, min_gap: float = 0.0) -> bool:
        """True when states are partly occupied or the gap is below ``min_gap`` (eV)."""
        return self.partial_occupations or self.gap < min_gap


def band_edges(eigenvalues, occupations, tolerance: float = 0.01) -> BandEdges:
    """Valence-band maximum, conduction-band minimum and whether any state is partly occupied.

    ``eigenvalues`` and ``occupations`` have the same shape (any order of k-points and bands, spin first if
    spin-polarized). A state counts as occupied above half the largest occupation (VASP writes 1 per state per
    spin channel); a relative occupation between ``tolerance`` and ``1 - tolerance`` is partial. aiida-vasp's
    own ``band_properties`` counts any occupation above 1e-8 as occupied and reports a positive gap whatever the
    smearing does (0.044 eV for the shared ``localfield`` run, whose states near the Fermi level are partly
    occupied), so it is not used.
    """
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    occupations = np.asarray(occupations, dtype=float)
    if eigenvalues.shape != occupations.shape:
        raise ValueError(f'eigenvalues {eigenvalues.shape} and occupations {occupations.shape} differ in shape')
    top = occupations.max()
    if not top > 0:
        raise ValueError('no occupied state')
    relative = occupations / top
    occupied = relative > 0.5
    if occupied.all() or not occupied.any():
        raise ValueError('need both occupied and empty states to locate the band edges (add empty bands)')
    partial = bool(((relative > tolerance) & (relative < 1 - tolerance)).any())
    return BandEdges(
        vbm=float(eigenvalues[occupied].max()), cbm=float(eigenvalues[~occupied].min()), partial_occupations=partial
    )


def labels_from_vasprun(vasprun: str | os.PathLike, outcar: str | os.PathLike | None = None) -> dict:
    """Frame labels from a ``vasprun.xml`` (and its ``OUTCAR`` for raw Born charges), without AiiDA.

    Reads with parsevasp, the library aiida-vasp's parser uses, and converts with the functions above. Keys:
    ``energy``, ``forces``, ``stress`` and, for a LEPSILON run, ``born_charges``, ``born_charges_source`` and
    ``eps_inf``; a label the run does not have is absent.
    """
    from parsevasp.vasprun import Xml  # noqa: PLC0415  (optional at import time: only this function needs it)

    xml = Xml(file_path=str(vasprun), k_before_band=True, logger=logging.getLogger(__name__))
    energies = xml.get_energies('last', etype=[ENERGY_TYPE], nosc=True)
    forces = xml.get_forces('last')
    natoms = len(forces)
    labels = {
        'energy': energy_from_vasp({ENERGY_TYPE: energies[f'{ENERGY_TYPE}_final'][-1]}),
        'forces': forces_from_vasp(forces, natoms),
        'stress': stress_from_vasp(xml.get_stress('last')),
    }
    born = xml.get_born()
    if born is not None and len(born):
        text = pathlib.Path(outcar).read_text(encoding='utf8', errors='replace') if outcar else None
        labels['born_charges'], labels['born_charges_source'] = born_charges_from_vasp(born, natoms, text)
    dielectrics = xml.get_dielectrics() or {}
    if dielectrics.get('epsilon') is not None:
        labels['eps_inf'] = eps_inf_from_vasp(dielectrics)
    return labels
