"""Run a trained model (ours or any nequip model) in ASE, with Born charges when it has them.

``load_calculator(path)`` accepts the three artefacts a training run leaves:

* ``*.nequip.pt2`` — AOTInductor-compiled (``nequip-compile --target ase_bec``), fastest;
* ``*.nequip.zip`` — the ``nequip-package`` file (self-contained: runs without this package);
* ``*.ckpt`` — a training checkpoint.

Z* comes back as ``atoms.calc.results['born_effective_charges']`` (N, 3, 3), in the Label
convention Z[i, a, b] = dF_ib / d(e E_a).
"""

from __future__ import annotations

from pathlib import Path

from nequip.data import AtomicDataDict
from nequip.integrations.ase import NequIPCalculator

from ionfield.models.keys import BORN_CHARGES


class ModelFileError(ValueError):
    """A model file that is missing, truncated, corrupt or of an unknown kind."""


class BornChargeCalculator(NequIPCalculator):
    """``NequIPCalculator`` that also stores the model's Born effective charges."""

    implemented_properties = NequIPCalculator.implemented_properties + [BORN_CHARGES]

    @classmethod
    def _get_aoti_compile_target(cls):
        from ionfield.models.nequip_bec.targets import ASE_BEC_TARGET, BEC_COMPILE_TARGETS

        return BEC_COMPILE_TARGETS[ASE_BEC_TARGET]

    def save_extra_outputs(self, out: AtomicDataDict.Type) -> None:
        born = out.get(AtomicDataDict.BORN_CHARGE_KEY)
        if born is not None and born.numel():
            self.results[BORN_CHARGES] = born.detach().cpu().double().numpy().reshape(-1, 3, 3)


def model_kind(path: str | Path) -> str:
    name = Path(path).name
    if name.endswith('.nequip.pt2'):
        return 'compiled'
    if name.endswith('.nequip.zip') or name.endswith('.ckpt'):
        return 'saved'
    raise ModelFileError(f'{path}: unknown model file kind (expected .nequip.pt2, .nequip.zip or .ckpt)')


def load_calculator(path: str | Path, device: str = 'cpu', has_bec: bool = True) -> NequIPCalculator:
    """An ASE calculator for the model at ``path``; :class:`ModelFileError` if it cannot be read."""
    path = Path(path)
    kind = model_kind(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ModelFileError(f'{path}: model file is missing or empty')
    cls = BornChargeCalculator if has_bec else NequIPCalculator
    try:
        if kind == 'compiled':
            return cls.from_compiled_model(str(path), device=device, chemical_species_to_atom_type_map=True)
        return cls._from_saved_model(str(path), device=device)
    except ModelFileError:
        raise
    except Exception as exc:  # torch/zipfile raise many kinds for a damaged file
        raise ModelFileError(f'{path}: cannot load the model ({type(exc).__name__}: {exc})') from exc


def model_type_names(calculator) -> list[str]:
    """The model's type names (species), in its own order, read from the calculator's type mapper."""
    for transform in calculator.transforms:
        names = getattr(transform, 'model_type_names', None)
        if names:
            return list(names)
    raise ModelFileError('the model has no type mapper: cannot tell its species')
