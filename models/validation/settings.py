"""Settings of one validation: the finite-difference steps and the [warn, fail] threshold of each quantity.

Units: strain is a dimensionless Voigt amplitude (shears engineering, ``gamma = 2 eps``), displacement and
forces in Å and eV/Å, lattice and elastic thresholds are relative errors (0.01 = 1 %), phonon thresholds
are in THz and Born-charge thresholds in e. A quantity passes at or below ``warn``, warns up to and
including ``fail`` and fails above it (:func:`ionfield.models.validation.compare.status`).

``phonon_supercell`` is the diagonal supercell that phonopy displaces atoms in. Only Gamma is compared,
and at Gamma ``[1, 1, 1]`` is exact, not an approximation: displacing an atom of the cell itself moves all
its periodic images with it, which is precisely the q = 0 perturbation, so the forces give the Gamma
dynamical matrix with every periodic image summed. A larger supercell gives the same Gamma frequencies
for more DFT calculations; it matters only where frequencies at other q are wanted.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ionfield.models.settings import Settings, SettingsError, is_integer, is_number, is_positive

#: The thresholded quantities, each a ``[warn, fail]`` field of :class:`ValidationSettings`, with its unit.
THRESHOLDS = {
    'lattice': 'relative error of a, b, c',
    'elastic': 'relative error of the Voigt-Reuss-Hill bulk and shear moduli',
    'phonons': 'THz, RMS error of the Gamma optical frequencies',
    'born_charges': 'e, RMSE over all tensor elements after the acoustic sum rule',
    'forces': 'eV/Å, force RMSE on sampled frames',
}


class ValidationError(SettingsError):
    """Validation settings that cannot be used; the message says what to change."""


@dataclasses.dataclass
class ValidationSettings(Settings):
    """Finite-difference steps, the model-side relaxation and the ``[warn, fail]`` thresholds (see the module)."""

    input_error: ClassVar[type[SettingsError]] = ValidationError
    label: ClassVar[str] = 'validation setting'

    strain: float = 0.005  # Voigt strain amplitude, +/- each of the 6 components
    displacement: float = 0.01  # Å, phonopy finite displacement
    phonon_supercell: list[int] = dataclasses.field(default_factory=lambda: [1, 1, 1])  # exact at Gamma
    relax_fmax: float = 0.005  # eV/Å, model-side cell relaxation
    relax_steps: int = 500
    # [warn, fail] thresholds
    lattice: list[float] = dataclasses.field(default_factory=lambda: [0.01, 0.02])
    elastic: list[float] = dataclasses.field(default_factory=lambda: [0.15, 0.30])
    phonons: list[float] = dataclasses.field(default_factory=lambda: [0.5, 1.0])
    born_charges: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.2])
    forces: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.2])

    def thresholds(self, name: str) -> tuple[float, float]:
        """The ``(warn, fail)`` pair of the quantity ``name`` (a key of :data:`THRESHOLDS`)."""
        warn, fail = getattr(self, name)
        return float(warn), float(fail)

    def problems(self) -> list[str]:
        problems = []
        if not (is_number(self.strain) and 0 < self.strain <= 0.05):
            problems.append(f'strain must be in (0, 0.05] (a Voigt amplitude, 0.005 = 0.5 %), got {self.strain!r}')
        if not (is_number(self.displacement) and 0 < self.displacement <= 0.1):
            problems.append(f'displacement must be in (0, 0.1] Å, got {self.displacement!r}')
        supercell = self.phonon_supercell
        if not (
            isinstance(supercell, (list, tuple)) and len(supercell) == 3 and all(is_integer(n, 1) for n in supercell)
        ):
            problems.append(f'phonon_supercell must be 3 positive integers (a diagonal supercell), got {supercell!r}')
        if not is_positive(self.relax_fmax):
            problems.append(f'relax_fmax must be a number above 0 (eV/Å), got {self.relax_fmax!r}')
        if not is_integer(self.relax_steps, 1):
            problems.append(f'relax_steps must be a positive integer, got {self.relax_steps!r}')
        for name, meaning in THRESHOLDS.items():
            value = getattr(self, name)
            if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_positive(x) for x in value)):
                problems.append(f'{name} must be [warn, fail], two numbers above 0 ({meaning}), got {value!r}')
            elif value[0] > value[1]:
                problems.append(f'{name} thresholds are out of order: warn {value[0]!r} > fail {value[1]!r}')
        return problems
