"""The Born-charge head: an equivariant, charge-neutral rank-2 tensor per atom.

For atom i of species t the head predicts

    Z*_i = q_t I + ΔZ_i(environment),   then   Z*_i <- Z*_i - w_i / Σ_j w_j · Σ_j Z*_j

* ``q_t`` is a learnable nominal charge per species (initialised to an oxidation state), so
  an untrained head already gives physically sensible, neutral charges.
* ``ΔZ_i`` is built from two sets of equivariant per-atom inputs:
  the backbone's features (saved before its last, scalar-only, convolution), which carry the
  many-body environment, and a geometric branch g_i = Σ_j R(r_ij) s(t_j) Y^l(r̂_ij), l = 1, 2,
  with a learnable radial function R on the backbone's Bessel edge embedding and a learnable
  weight s per neighbour species. The geometric branch is needed because the backbone's vector
  features are tiny at initialisation (~1e-3 of the scalars, measured), so a head fed only by
  them barely moves from the nominal charges. Inputs x_i = [features; g_i] are mixed into k
  channels of 0e, 1o and 2e, which go through a self tensor product (into 0e + 1e + 2e), plus a
  linear map of x_i (0e and 2e). The output irreps 0e + 1e + 2e are exactly the content of a
  general 3x3 tensor whose two indices are polar vectors (1o ⊗ 1o = 0e + 1e + 2e). The 1e part
  is the antisymmetric part (Z* is not symmetric off high-symmetry sites); the tensor product
  supplies it (cross products of different vector channels) even without parity in the
  backbone. e3nn's Cartesian change of basis turns the nine components into the 3x3 matrix,
  so rotations act as R Z Rᵀ and inversion leaves Z* unchanged.
* The last line is the acoustic sum rule, imposed exactly per frame: the frame's net charge
  tensor is removed, shared out with positive learnable per-species weights w_t (initially
  equal). Rotations commute with it, so equivariance is kept.
"""

import math

import torch
from e3nn.io._cartesian_tensor import CartesianTensor
from e3nn.o3._irreps import Irreps
from e3nn.o3._linear import Linear
from e3nn.o3._spherical_harmonics import spherical_harmonics
from e3nn.o3._tensor_product._sub import FullyConnectedTensorProduct
from nequip.data import AtomicDataDict
from nequip.nn._graph_mixin import GraphModuleMixin
from nequip.nn.utils import scatter, with_edge_vectors_

from .keys import BEC_FEATURES_KEY, BORN_CHARGE_KEY

#: Irreps of a general rank-2 Cartesian tensor with two polar-vector indices.
BEC_IRREPS = Irreps('0e + 1e + 2e')
_SOFTPLUS_INV_ONE = math.log(math.e - 1.0)


class CopyField(GraphModuleMixin, torch.nn.Module):
    """Keep a copy of a field under another key, *without* detaching it (unlike ``SaveForOutput``):
    the Born-charge loss has to train the backbone layers the copied features come from."""

    def __init__(self, field: str, out_field: str, irreps_in=None):
        super().__init__()
        self._init_irreps(irreps_in=irreps_in, required_irreps_in=[field])
        self.irreps_out[out_field] = self.irreps_in[field]
        self.field = field
        self.out_field = out_field

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        data[self.out_field] = data[self.field]
        return data


class BornChargeHead(GraphModuleMixin, torch.nn.Module):
    """Predict Z* (N, 3, 3) from equivariant node features; see the module docstring."""

    def __init__(
        self,
        type_names: list[str],
        nominal_charges: dict[str, float],
        num_features: int = 4,
        nominal_charges_trainable: bool = True,
        avg_num_neighbors: float | None = None,
        field: str = BEC_FEATURES_KEY,
        out_field: str = BORN_CHARGE_KEY,
        irreps_in=None,
    ):
        super().__init__()
        self.field = field
        self.out_field = out_field
        self._init_irreps(irreps_in=irreps_in, required_irreps_in=[field, AtomicDataDict.EDGE_EMBEDDING_KEY])
        feature_irreps = Irreps(self.irreps_in[field])
        if all(ir.l == 0 for _, ir in feature_irreps):
            raise ValueError(
                'the Born-charge head needs vector features (l >= 1) from the backbone, but '
                f'`{field}` only holds {feature_irreps}: use l_max >= 1 and num_layers >= 2'
            )
        if num_features < 1:
            raise ValueError(f'`bec_head_features` must be >= 1, got {num_features}')

        feature_hidden = Irreps([(num_features, ir) for _, ir in feature_irreps if ir.l <= 2]).sort().irreps.simplify()
        self.pre = Linear(feature_irreps, feature_hidden)
        # geometric branch: m channels of Y^1 (1o) and Y^2 (2e) sums over neighbours
        self.num_features = num_features
        num_types = len(type_names)
        num_basis = Irreps(self.irreps_in[AtomicDataDict.EDGE_EMBEDDING_KEY]).dim
        self.radial = torch.nn.Linear(num_basis, 2 * num_features, bias=False)
        self.neighbor_weights = torch.nn.Parameter(torch.randn(num_types, 2 * num_features))
        self.edge_norm = 1.0 / math.sqrt(avg_num_neighbors) if avg_num_neighbors else 1.0
        geometric = Irreps(f'{num_features}x1o + {num_features}x2e')
        combined = feature_hidden + geometric
        # mix features and geometry into k channels per irrep, then a small self tensor product:
        # its cost grows with k², so k stays small (measured: k=8 over 2x(0e,1o,2e) cost more
        # than the whole small backbone)
        mixed = Irreps(f'{num_features}x0e + {num_features}x1o + {num_features}x2e')
        self.mix = Linear(combined, mixed)
        self.tp = FullyConnectedTensorProduct(mixed, mixed, BEC_IRREPS)
        self.direct = Linear(combined, BEC_IRREPS)

        # change of basis 0e+1e+2e (9) -> 3x3, as e3nn defines it for the formula "ij"
        cartesian = CartesianTensor('ij')
        if Irreps(cartesian) != BEC_IRREPS:  # pragma: no cover - guards an e3nn change
            raise RuntimeError(f"unexpected irreps for 'ij': {Irreps(cartesian)}")
        basis = cartesian.reduced_tensor_products().change_of_basis  # (9, 3, 3)
        self.register_buffer('change_of_basis', basis.to(torch.get_default_dtype()))

        missing = [t for t in type_names if t not in nominal_charges]
        if missing:
            raise ValueError(f'no nominal charge for type(s) {missing}')
        self.nominal_charges = torch.nn.Parameter(
            torch.tensor([float(nominal_charges[t]) for t in type_names]),
            requires_grad=nominal_charges_trainable,
        )
        self.raw_neutrality_weights = torch.nn.Parameter(torch.full((len(type_names),), _SOFTPLUS_INV_ONE))
        self.irreps_out[out_field] = None  # a Cartesian tensor, registered as such by nequip

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        data = with_edge_vectors_(data, with_lengths=False)
        h = torch.cat([self.pre(data[self.field]), self._geometric(data)], dim=-1)
        mixed = self.mix(h)
        irreps = self.tp(mixed, mixed) + self.direct(h)
        env = torch.einsum('nk,kab->nab', irreps, self.change_of_basis.to(irreps.dtype))

        types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1)
        q = self.nominal_charges.to(env.dtype)[types]
        eye = torch.eye(3, dtype=env.dtype, device=env.device)
        z = env + q.view(-1, 1, 1) * eye

        # exact acoustic sum rule per frame
        w = torch.nn.functional.softplus(self.raw_neutrality_weights.to(env.dtype))[types]
        flat = z.reshape(-1, 9)
        if AtomicDataDict.BATCH_KEY in data:
            batch = data[AtomicDataDict.BATCH_KEY]
            n_frames = AtomicDataDict.num_frames(data)
            net = scatter(flat, batch, dim=0, dim_size=n_frames, reduce='sum')
            wsum = scatter(w.unsqueeze(-1), batch, dim=0, dim_size=n_frames, reduce='sum')
            flat = flat - w.unsqueeze(-1) * (net / wsum)[batch]
        else:
            net = flat.sum(dim=0, keepdim=True)
            flat = flat - w.unsqueeze(-1) * net / w.sum()
        data[self.out_field] = flat.reshape(-1, 3, 3)
        return data

    def _geometric(self, data: AtomicDataDict.Type) -> torch.Tensor:
        """g_i = Σ_j R(r_ij) s(t_j) Y^l(r̂_ij) for l = 1, 2, laid out as m x 1o + m x 2e."""
        center = data[AtomicDataDict.EDGE_INDEX_KEY][0]
        neighbor = data[AtomicDataDict.EDGE_INDEX_KEY][1]
        vectors = data[AtomicDataDict.EDGE_VECTORS_KEY]
        embedding = data[AtomicDataDict.EDGE_EMBEDDING_KEY]
        types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1)
        weights = self.radial(embedding.to(self.radial.weight.dtype)) * self.neighbor_weights[types[neighbor]]
        sh = spherical_harmonics([1, 2], vectors.to(weights.dtype), normalize=True, normalization='component')
        m = self.num_features
        l1 = weights[:, :m, None] * sh[:, None, 0:3]
        l2 = weights[:, m:, None] * sh[:, None, 3:8]
        edges = torch.cat([l1.reshape(-1, 3 * m), l2.reshape(-1, 5 * m)], dim=-1)
        summed = scatter(edges, center, dim=0, dim_size=types.shape[0], reduce='sum')
        return summed * self.edge_norm
