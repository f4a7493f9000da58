"""Validating a machine-learned potential against DFT: lattice, elastic constants, Gamma phonons, Born charges."""
