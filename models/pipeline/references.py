"""Published transport numbers of the reference structures (``published.yaml``) set beside a campaign's.

The pipeline report compares what the campaign measured with what has been published for the same
structure, direction and quantity, and says where the comparison is only indicative (an experiment's carrier
density is not the simulation cell's). A structure without published numbers gets no comparison.
"""

from __future__ import annotations

import functools
from importlib.resources import files

import yaml

IN_PLANE = 'in_plane'


@functools.cache
def published_values() -> dict[str, list[dict]]:
    """Reference structure name -> its published entries (value, unit, direction, method, source, note)."""
    return yaml.safe_load(files(__package__).joinpath('published.yaml').read_text())


def measured_activation(arrhenius: list[dict], structure: str, species: str, direction: str) -> dict | None:
    """Ea (eV, with its std) of ``structure``/``species`` along ``direction`` from a campaign's Arrhenius entries.

    ``in_plane`` is the mean of the x and y fits (errors combined), as the experiment averages over the plane.
    """
    fits = {
        entry['direction']: entry['fit']
        for entry in arrhenius
        if entry['structure'] == structure and entry['species'] == species and entry['fit'].get('status') == 'ok'
    }
    wanted = ('x', 'y') if direction == IN_PLANE else (direction,)
    if not all(axis in fits for axis in wanted):
        return None
    values = [fits[axis]['activation_energy_eV'] for axis in wanted]
    errors = [fits[axis]['activation_energy_std_eV'] for axis in wanted]
    mean = sum(values) / len(values)
    std = (sum(e * e for e in errors) ** 0.5) / len(errors)
    return {'value': mean, 'std': std}


def comparison_rows(reference: str | None, campaign_summary: dict | None, structure_key: str) -> list[dict]:
    """One row per published entry of ``reference``: the published value and the campaign's, where it has one."""
    if reference is None or reference not in published_values():
        return []
    rows = []
    arrhenius = (campaign_summary or {}).get('arrhenius', [])
    for entry in published_values()[reference]:
        ours = None
        if entry['quantity'] == 'activation_energy':
            ours = measured_activation(arrhenius, structure_key, entry['species'], entry['direction'])
        rows.append({**entry, 'ours': ours})
    return rows
