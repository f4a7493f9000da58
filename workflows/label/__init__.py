"""Labelling: structures in, a :class:`~ionfield.models.data.dataset.Dataset` of DFT/DFPT frames out (QE or VASP)."""
