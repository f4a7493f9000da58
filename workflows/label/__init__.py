"""Labelling: structures in, a :class:`~ionfield.models.dataset.Dataset` of DFT/DFPT frames out (QE or VASP)."""
