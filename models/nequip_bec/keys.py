"""Field names used by the Born-charge head (nequip style: keys as constants)."""

from typing import Final

from nequip.data import AtomicDataDict

#: Born effective charges, (N, 3, 3), in the Label convention Z[i, a, b] = dF_ib / d(e E_a).
BORN_CHARGE_KEY: Final[str] = AtomicDataDict.BORN_CHARGE_KEY
#: The equivariant node features the head reads, saved before the last (scalar-only) convnet.
BEC_FEATURES_KEY: Final[str] = 'bec_node_features'
