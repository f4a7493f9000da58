"""``NequIPBECModel``: a NequIP GNN that predicts energy, forces, stress and Born charges.

Use it in a nequip config exactly like ``nequip.model.NequIPGNNModel`` (same arguments), plus
the ``bec_*`` arguments below::

    model:
      _target_: ionfield.models.nequip_bec.model.NequIPBECModel
      ... the usual NequIPGNNModel arguments ...
      bec_head_features: 4
      bec_nominal_charges: {Li: 1.0, N: -3.0}   # optional: oxidation states by default

One network, one forward pass: the head branches off the backbone before its last convolution
and adds a small per-atom tensor product, so Z* costs little next to the autograd forces.
"""

from nequip.data import AtomicDataDict
from nequip.model.nequip_models import NequIPGNNModel
from nequip.model.utils import model_builder
from nequip.nn.grad_output import ForceStressOutput

from .head import BornChargeHead, CopyField
from .keys import BEC_FEATURES_KEY

#: Formal oxidation states used as the head's starting nominal charges. Elements with several
#: common states are left out on purpose: give them in ``bec_nominal_charges``.
NOMINAL_CHARGES: dict[str, float] = {
    'H': 1.0,
    'Li': 1.0,
    'Na': 1.0,
    'K': 1.0,
    'Rb': 1.0,
    'Cs': 1.0,
    'Ag': 1.0,
    'Be': 2.0,
    'Mg': 2.0,
    'Ca': 2.0,
    'Sr': 2.0,
    'Ba': 2.0,
    'Zn': 2.0,
    'B': 3.0,
    'Al': 3.0,
    'Ga': 3.0,
    'In': 3.0,
    'Sc': 3.0,
    'Y': 3.0,
    'La': 3.0,
    'Si': 4.0,
    'Ge': 4.0,
    'Ti': 4.0,
    'Zr': 4.0,
    'Hf': 4.0,
    'P': 5.0,
    'Nb': 5.0,
    'Ta': 5.0,
    'N': -3.0,
    'O': -2.0,
    'S': -2.0,
    'Se': -2.0,
    'Te': -2.0,
    'F': -1.0,
    'Cl': -1.0,
    'Br': -1.0,
    'I': -1.0,
}


def nominal_charges_for(type_names, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Nominal charges for ``type_names``: ``overrides`` first, then :data:`NOMINAL_CHARGES`.

    A type in neither gets a clear error rather than a silent zero: a wrong start is how a
    Born-charge head ends up stuck in a bad minimum.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(type_names)
    if unknown:
        raise ValueError(f'`bec_nominal_charges` names types not in the model: {sorted(unknown)}')
    charges = {}
    for name in type_names:
        if name in overrides:
            charges[name] = float(overrides[name])
        elif name in NOMINAL_CHARGES:
            charges[name] = NOMINAL_CHARGES[name]
        else:
            raise ValueError(f'no default nominal charge for type `{name}`: give one in `bec_nominal_charges`')
    return charges


@model_builder
def NequIPBECModel(  # noqa: N802 (nequip names model builders like classes)
    bec_head_features: int = 4,
    bec_nominal_charges: dict[str, float] | None = None,
    bec_nominal_charges_trainable: bool = True,
    **kwargs,
):
    """NequIP GNN (all ``NequIPGNNModel`` arguments) with a Born-effective-charge head.

    Args:
        bec_head_features (int): channels per irrep in the head's geometric branch and tensor product (default 4)
        bec_nominal_charges (Dict[str, float]): starting charge per type; defaults to formal
            oxidation states (:data:`NOMINAL_CHARGES`)
        bec_nominal_charges_trainable (bool): learn the nominal charges (default ``True``)
    """
    type_names = list(kwargs['type_names'])
    charges = nominal_charges_for(type_names, bec_nominal_charges)
    if kwargs.get('num_layers', 4) < 2:
        raise ValueError('the Born-charge head needs `num_layers >= 2`')

    force_model = NequIPGNNModel(**kwargs)
    energy_model = force_model.func
    convnets = [name for name in energy_model._modules if name.endswith('_convnet')]
    last, before_last = convnets[-1], convnets[-2]

    energy_model.insert(
        'bec_features',
        CopyField(
            field=AtomicDataDict.NODE_FEATURES_KEY,
            out_field=BEC_FEATURES_KEY,
            irreps_in=energy_model._modules[before_last].irreps_out,
        ),
        before=last,
    )
    energy_model.append(
        'born_charge_head',
        BornChargeHead(
            type_names=type_names,
            nominal_charges=charges,
            num_features=bec_head_features,
            nominal_charges_trainable=bec_nominal_charges_trainable,
            avg_num_neighbors=_scalar_or_none(kwargs.get('avg_num_neighbors')),
            irreps_in=energy_model.irreps_out,
        ),
    )
    return ForceStressOutput(energy_model, force_model.do_derivatives)


def _scalar_or_none(value) -> float | None:
    """The global average neighbour count (per-type dicts are not used by the head)."""
    return float(value) if isinstance(value, (int, float)) else None
