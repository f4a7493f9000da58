"""Our models in TorchSim: nequip's TorchSim integration, plus Born charges and the uniform-field force.

:class:`PlainTorchSimModel` is nequip's ``NequIPTorchSimCalc`` that also returns the Born-charge head's Z*
(``born_effective_charges``, (N, 3, 3), the Label convention), for committee members. :class:`FieldTorchSimModel`
adds the field force ``e Z_i^T E`` of each atom's system (:func:`.field_torch.field_forces_batched`) to the
forces TorchSim integrates, and returns it alone as ``field_forces``, as the ASE backend's ``FieldCalculator``
does. A compiled model is read with our ``batch_bec`` target (nequip's ``batch`` target drops Z*).

Imports torch-sim: only the TorchSim backend imports this module.
"""

from __future__ import annotations

from nequip.data import AtomicDataDict
from nequip.integrations.torchsim import NequIPTorchSimCalc

from ionfield.models.keys import BORN_CHARGES, FIELD_FORCES

from .field_calculator import FieldMDInputError
from .field_torch import field_forces_batched


class PlainTorchSimModel(NequIPTorchSimCalc):
    """nequip's TorchSim model with the Born charges of our head (when it has one) among its outputs."""

    @classmethod
    def _get_aoti_compile_target(cls):
        from ionfield.models.nequip_bec.targets import BATCH_BEC_TARGET, BEC_COMPILE_TARGETS

        return BEC_COMPILE_TARGETS[BATCH_BEC_TARGET]

    def save_extra_outputs(self, out, results) -> None:
        born = out.get(AtomicDataDict.BORN_CHARGE_KEY)
        if born is not None and born.numel():
            results[BORN_CHARGES] = born.detach().reshape(-1, 3, 3).to(results['forces'].dtype)


class FieldTorchSimModel(PlainTorchSimModel):
    """Forces ``F_i(model) + e Z*_i^T E`` with each atom's field and Z* mode (:meth:`set_field`)."""

    fields = None
    modes = None

    def set_field(self, fields, modes) -> None:
        """Per-atom fields (N, 3) in V/Å and Z* mode indices (N,), in the order of the batch's atoms."""
        self.fields, self.modes = fields, modes
        self.field_on = bool((fields != 0).any())

    def save_extra_outputs(self, out, results) -> None:
        super().save_extra_outputs(out, results)
        if self.fields is None or not self.field_on:
            return
        born = results.get(BORN_CHARGES)
        if born is None:
            raise FieldMDInputError(
                'the model returned no Born effective charges: field MD needs a model with a Born-charge head'
            )
        if born.shape[0] != self.fields.shape[0]:
            raise FieldMDInputError(f'{born.shape[0]} atoms in the batch, but fields for {self.fields.shape[0]}')
        extra = field_forces_batched(born, self.fields.to(born.dtype), self.modes)
        results['forces'] = results['forces'] + extra
        results[FIELD_FORCES] = extra
