"""Our nequip extension: a Born-effective-charge head on a NequIP backbone.

Loaded by nequip itself through the ``nequip.extension`` entry point ``init_always``, so that
compile targets returning Z* are registered wherever nequip is imported. The model code in this
package imports e3nn and nequip submodules only: ``nequip-package`` interns it into the
``.nequip.zip`` file, which then runs without aiida-ionfield installed.
"""

from nequip.data import register_fields

from .keys import BEC_FEATURES_KEY, BORN_CHARGE_KEY
from .targets import register_bec_compile_targets

# per-atom intermediate features: nequip must batch and permute them as node fields
register_fields(node_fields=[BEC_FEATURES_KEY])
register_bec_compile_targets()

__all__ = ['BEC_FEATURES_KEY', 'BORN_CHARGE_KEY']
