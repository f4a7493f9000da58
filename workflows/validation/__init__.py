"""Validation: a model against DFT physics (lattice, elastic constants, phonons, Born charges, MD frames)."""
