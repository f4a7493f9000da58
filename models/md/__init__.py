"""Field MD engine core: molecular dynamics of a trained model under a uniform electric field.

Plain Python, usable outside AiiDA (``ionfield-md`` and ``MDCalculation`` call it):

* :mod:`.field`: the field force e Z*^T E (full tensor, diagonal or field-axis ablations);
* :mod:`.calculator`: an ASE calculator that adds that force to any model returning Z*;
* :mod:`.settings`: validated run settings (ensemble, field, stop bounds, output);
* :mod:`.stops`: the stop conditions and their reasons;
* :mod:`.trajectory` and :mod:`.logs`: the trajectory (HDF5 or extxyz) and the CSV logs;
* :mod:`.engine`: the loop (ASE backend), committee monitoring, restart state.
"""
