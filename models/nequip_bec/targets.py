"""AOTInductor compile targets that also return Z*.

nequip's own ``ase`` and ``batch`` targets return energy, forces and stress only; a compiled
model keeps exactly the outputs its target lists, so Z* needs targets of its own:
``nequip-compile --mode aotinductor --target ase_bec`` (one frame, for ASE and our MD engine) and
``--target batch_bec`` (many frames at once, e.g. a committee evaluator or TorchSim).
"""

from nequip.scripts._compile_utils import (
    ASE_OUTPUTS,
    BATCH_INPUTS,
    PAIR_NEQUIP_INPUTS,
    batched_data_settings,
    register_compile_targets,
    single_frame_batch_map_settings,
    single_frame_data_settings,
)

from .keys import BORN_CHARGE_KEY

ASE_BEC_TARGET = 'ase_bec'
BATCH_BEC_TARGET = 'batch_bec'
BEC_OUTPUTS = list(ASE_OUTPUTS) + [BORN_CHARGE_KEY]

BEC_COMPILE_TARGETS = {
    ASE_BEC_TARGET: {
        'input': PAIR_NEQUIP_INPUTS,
        'output': BEC_OUTPUTS,
        'batch_map_settings': single_frame_batch_map_settings,
        'data_settings': single_frame_data_settings,
    },
    BATCH_BEC_TARGET: {
        'input': BATCH_INPUTS,
        'output': BEC_OUTPUTS,
        'batch_map_settings': lambda batch_map: batch_map,
        'data_settings': batched_data_settings,
    },
}


def register_bec_compile_targets() -> None:
    """Make ``ase_bec`` and ``batch_bec`` known to ``nequip-compile`` (idempotent)."""
    register_compile_targets(BEC_COMPILE_TARGETS)
