"""The Born-charge model: nequip's own model test-suite plus Z*-specific physics checks.

``EnergyModelTestsMixin`` is nequip's reusable suite (init, forward, batching, rotation,
inversion, translation and permutation equivariance of *every* output, Z* included as a
Cartesian "ij" tensor, numerical force gradients, smoothness at the cutoff) over float32 and
float64. Our own tests add what nequip cannot know: exact neutrality, the nominal start, the
antisymmetric part, parity on and off, and bad arguments.
"""

import numpy as np
import pytest
import torch

pytest.importorskip('nequip')

from nequip.data import AtomicDataDict, from_ase  # noqa: E402
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform  # noqa: E402
from nequip.utils.global_state import set_global_state  # noqa: E402
from nequip.utils.test import assert_AtomicData_equivariant  # noqa: E402
from nequip.utils.unittests.conftest import *  # noqa: E402,F401,F403  (nequip's fixtures)
from nequip.utils.unittests.model_tests_basic import EnergyModelTestsMixin  # noqa: E402

from ionfield.models.nequip_bec.model import NOMINAL_CHARGES, NequIPBECModel, nominal_charges_for  # noqa: E402
from ionfield.models.structures.reference import alpha_li3n  # noqa: E402

BASE = {
    '_target_': 'ionfield.models.nequip_bec.model.NequIPBECModel',
    'seed': 123,
    'r_max': 4.0,
    'num_layers': 2,
    'l_max': 1,
    'num_features': 8,
    'radial_mlp_width': 16,
    'avg_num_neighbors': 12.0,
    'bec_head_features': 4,
}


class TestNequipSuite(EnergyModelTestsMixin):
    """nequip's model tests run on our model (parity on and off)."""

    @pytest.fixture(scope='class', params=[False, True], ids=['parity-off', 'parity-on'])
    def config(self, request):
        return {
            **BASE,
            'type_names': ['H', 'C', 'O', 'Cu'],
            'parity': request.param,
            'bec_nominal_charges': {'C': 0.0, 'Cu': 0.0},
        }

    @pytest.fixture
    def strict_locality(self):
        return False


def li3n_model(parity=False, l_max=1, dtype='float64', **extra):
    set_global_state()
    config = {k: v for k, v in BASE.items() if k != '_target_'}
    config.update(type_names=['Li', 'N'], parity=parity, l_max=l_max, model_dtype=dtype, **extra)
    return NequIPBECModel(**config)


def li3n_data(seed=2, repeat=(2, 1, 1), stdev=0.1):
    atoms = alpha_li3n().repeat(repeat)
    atoms.rattle(stdev, seed=seed)
    data = ChemicalSpeciesToAtomTypeMapper(['Li', 'N'])(from_ase(atoms))
    return NeighborListTransform(r_max=4.0)(data)


@pytest.mark.parametrize('parity', [False, True])
@pytest.mark.parametrize('l_max', [1, 2])
def test_equivariant_on_li3n(parity, l_max):
    """Rotations, inversion and translations (nequip's checker) on a distorted Li3N supercell."""
    assert_AtomicData_equivariant(li3n_model(parity=parity, l_max=l_max), li3n_data())


def test_sum_rule_is_exact_per_frame_in_a_batch():
    model = li3n_model()
    frames = [li3n_data(seed=1), li3n_data(seed=5, repeat=(1, 1, 2))]
    batch = AtomicDataDict.batched_from_list([f.copy() for f in frames])
    out = model(batch)
    born = out[AtomicDataDict.BORN_CHARGE_KEY].detach()
    sums = torch.zeros(2, 3, 3, dtype=born.dtype).index_add_(0, out[AtomicDataDict.BATCH_KEY], born)
    assert sums.abs().max() < 1e-12
    # batched and single-frame evaluations agree
    single = torch.cat([model(f.copy())[AtomicDataDict.BORN_CHARGE_KEY].detach() for f in frames])
    torch.testing.assert_close(born, single)


def test_untrained_head_starts_near_nominal_charges_and_is_not_symmetric():
    out = li3n_model()(li3n_data())
    born = out[AtomicDataDict.BORN_CHARGE_KEY].detach().numpy()
    types = out[AtomicDataDict.ATOM_TYPE_KEY].view(-1).numpy()
    nominal = np.array([1.0, -3.0])[types]
    assert np.abs(born - nominal[:, None, None] * np.eye(3)).max() < 0.3
    antisymmetric = born - born.transpose(0, 2, 1)
    assert np.abs(antisymmetric).max() > 1e-4  # the 1e channel exists


def test_head_gradients_reach_backbone_and_charges():
    model = li3n_model()
    out = model(li3n_data())
    out[AtomicDataDict.BORN_CHARGE_KEY].pow(2).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert any('convnet' in n and g is not None and g.abs().sum() > 0 for n, g in grads.items())
    assert any(n.endswith('nominal_charges') and g is not None for n, g in grads.items())


def test_nominal_charges_defaults_and_errors():
    assert nominal_charges_for(['Li', 'N']) == {'Li': 1.0, 'N': -3.0}
    assert nominal_charges_for(['Li', 'N'], {'N': -2.5})['N'] == -2.5
    assert NOMINAL_CHARGES['Ag'] == 1.0 and NOMINAL_CHARGES['I'] == -1.0
    with pytest.raises(ValueError, match='no default nominal charge for type `Fe`'):
        nominal_charges_for(['Li', 'Fe'])
    with pytest.raises(ValueError, match='not in the model'):
        nominal_charges_for(['Li'], {'Na': 1.0})


def test_one_layer_is_refused():
    with pytest.raises(ValueError, match='num_layers >= 2'):
        li3n_model(num_layers=1)
