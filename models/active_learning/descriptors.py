"""A fixed-length structural descriptor per frame, for diverse (farthest-point) selection.

For every ordered species pair (A, B), the Gaussian-smeared radial distribution of B neighbours
around A atoms within ``r_max``, averaged over the A atoms: ``n_species² x n_bins`` numbers.
It is invariant to rotation, translation and atom order, cheap (one neighbour list), and two
frames whose local environments differ get distant vectors, which is all farthest-point
selection needs. Frames of different compositions are comparable as long as ``species`` is shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list


def radial_descriptor(atoms: Atoms, species: Sequence[str], r_max: float = 5.0, n_bins: int = 24) -> np.ndarray:
    """Descriptor of one frame (see the module docstring); ``species`` fixes the order of the blocks."""
    species = list(species)
    index = {symbol: k for k, symbol in enumerate(species)}
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(index))
    if unknown:
        raise ValueError(f'species {unknown} are not in the descriptor species {species}')
    kinds = np.array([index[s] for s in symbols])
    centres = np.linspace(0.0, r_max, n_bins)
    width = r_max / n_bins
    i, j, d = neighbor_list('ijd', atoms, r_max)
    smeared = np.exp(-0.5 * ((d[:, None] - centres[None, :]) / width) ** 2)
    blocks = np.zeros((len(species), len(species), n_bins))
    np.add.at(blocks, (kinds[i], kinds[j]), smeared)
    counts = np.bincount(kinds, minlength=len(species)).astype(float)
    blocks /= np.maximum(counts, 1.0)[:, None, None]
    return blocks.reshape(-1)


def descriptor_matrix(frames: Sequence[Atoms], species: Sequence[str], r_max: float = 5.0, n_bins: int = 24):
    """(n_frames, n_features) descriptors, one row per frame."""
    if not frames:
        return np.zeros((0, len(species) ** 2 * n_bins))
    return np.stack([radial_descriptor(atoms, species, r_max, n_bins) for atoms in frames])
