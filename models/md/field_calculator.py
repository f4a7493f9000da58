"""``FieldCalculator``: any ASE calculator that returns Born charges, plus the uniform-field force.

The wrapped model gives energy, forces, stress and ``born_effective_charges`` (our
``BornChargeCalculator`` does; so can an analytic test model). The wrapper returns the model's
energy and stress unchanged and the forces ``F_i(model) + e Z*_i^T E``; the field part alone is in
``results['field_forces']``. The field term has no energy of its own: Z* depends on positions, so
the field force is not in general the gradient of anything. The engine integrates the work it does
instead (``field_work``), and ``E_kin + E_pot - W`` is the quantity NVE conserves.

It also times the model calls, so a benchmark can tell model time from integrator overhead.
"""

from __future__ import annotations

import time

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ionfield.models.keys import BORN_CHARGES, FIELD_FORCES

from .field import check_bec_mode, field_forces, parse_field


class FieldMDInputError(ValueError):
    """Inputs field MD cannot run with (a model without a Born-charge head under a field, ...)."""


class FieldCalculator(Calculator):
    """Model forces plus ``e Z*^T E`` (see the module docstring)."""

    implemented_properties = ['energy', 'free_energy', 'forces', 'stress', BORN_CHARGES, FIELD_FORCES]

    def __init__(self, model: Calculator, field=(0.0, 0.0, 0.0), bec_mode: str = 'full', **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.field = parse_field(field)
        self.bec_mode = check_bec_mode(bec_mode)
        self.model_time = 0.0
        self.model_calls = 0

    @property
    def field_on(self) -> bool:
        return bool(np.any(self.field != 0))

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        wanted = ['energy', 'forces']
        if 'stress' in properties and all(self.atoms.pbc):
            wanted.append('stress')
        started = time.perf_counter()
        self.model.calculate(self.atoms, wanted, system_changes)
        self.model_time += time.perf_counter() - started
        self.model_calls += 1
        results = self.model.results
        forces = np.array(results['forces'], dtype=float)
        born = results.get(BORN_CHARGES)
        if self.field_on:
            if born is None:
                raise FieldMDInputError(
                    'the model returned no Born effective charges: field MD needs a model with a Born-charge head'
                )
            extra = field_forces(born, self.field, self.bec_mode)
        else:
            extra = np.zeros_like(forces)
        self.results = {
            'energy': float(results['energy']),
            'free_energy': float(results.get('free_energy', results['energy'])),
            'forces': forces + extra,
            FIELD_FORCES: extra,
        }
        if 'stress' in results:
            self.results['stress'] = np.array(results['stress'], dtype=float)
        if born is not None:
            self.results[BORN_CHARGES] = np.array(born, dtype=float)
