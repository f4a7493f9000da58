"""``ModelData`` (``ionfield.model``) and ``CommitteeData`` (``ionfield.committee``).

A trained model is its ``nequip-package`` file (``model.nequip.zip``, self-contained: it runs
with nequip alone) and, when compiled, its AOTInductor file (``model.nequip.pt2``), both in the
node's repository. What one wants to query is in attributes: species, r_max, whether it has a
Born-charge head, the test metrics, the UUID of the training dataset, the seed, and a sha256 of
the package file (also checked on every read, so a damaged repository file is caught).

A committee is a node that lists its member models (by UUID, in seed order) and is produced by
a calcfunction from them, so the provenance graph links committee -> members -> datasets.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aiida import orm

__all__ = ('ModelData', 'CommitteeData')


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class ModelData(orm.Data):
    """A trained (nequip) model with its metadata."""

    PACKAGE = 'model.nequip.zip'
    COMPILED = 'model.nequip.pt2'

    def __init__(
        self,
        package: str | Path,
        *,
        species: list[str],
        r_max: float,
        has_bec: bool,
        metrics: dict | None = None,
        dataset_uuid: str = '',
        seed: int | None = None,
        settings: dict | None = None,
        compiled: str | Path | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        content = Path(package).read_bytes()
        if not content.startswith(b'PK'):
            raise ValueError(f'{package} is not a nequip package (.nequip.zip) file')
        self.base.repository.put_object_from_filelike(io.BytesIO(content), self.PACKAGE)
        if compiled is not None:
            self.base.repository.put_object_from_file(str(compiled), self.COMPILED)
        self.base.attributes.set_many(
            {
                'species': sorted(species),
                'r_max': float(r_max),
                'has_bec': bool(has_bec),
                'metrics': dict(metrics or {}),
                'dataset_uuid': dataset_uuid,
                'seed': seed,
                'settings': dict(settings or {}),
                'compiled': compiled is not None,
                'sha256': _sha256(content),
            }
        )

    species = property(lambda self: self.base.attributes.get('species'))
    r_max = property(lambda self: self.base.attributes.get('r_max'))
    has_bec = property(lambda self: self.base.attributes.get('has_bec'))
    metrics = property(lambda self: self.base.attributes.get('metrics'))
    dataset_uuid = property(lambda self: self.base.attributes.get('dataset_uuid'))
    seed = property(lambda self: self.base.attributes.get('seed'))
    sha256 = property(lambda self: self.base.attributes.get('sha256'))
    compiled = property(lambda self: self.base.attributes.get('compiled'))

    def get_package_bytes(self) -> bytes:
        content = self.base.repository.get_object_content(self.PACKAGE, mode='rb')
        if _sha256(content) != self.sha256:
            raise ValueError(f'{self.PACKAGE} of node {self.pk} does not match its sha256 attribute (damaged file)')
        return content

    def export(self, target: str | Path, compiled: bool = False) -> Path:
        """Write the package (or the compiled file) to ``target``."""
        target = Path(target)
        if compiled:
            if not self.compiled:
                raise ValueError(f'model {self.pk} was not compiled')
            target.write_bytes(self.base.repository.get_object_content(self.COMPILED, mode='rb'))
        else:
            target.write_bytes(self.get_package_bytes())
        return target

    @contextlib.contextmanager
    def as_path(self, compiled: bool = False) -> Iterator[Path]:
        """A temporary file holding the model, for libraries that want a path."""
        name = self.COMPILED if compiled else self.PACKAGE
        with tempfile.TemporaryDirectory() as tmp:
            yield self.export(Path(tmp) / name, compiled=compiled)

    def get_calculator(self, device: str = 'cpu'):
        """An ASE calculator (Born charges in ``results['born_effective_charges']`` when there is a head)."""
        from ionfield.models.potential.calculator import load_calculator

        with self.as_path() as path:
            return load_calculator(path, device=device, has_bec=self.has_bec)


class CommitteeData(orm.Data):
    """Models trained on the same data with different seeds; their disagreement is our uncertainty."""

    def __init__(self, members: list[ModelData], **kwargs) -> None:
        super().__init__(**kwargs)
        if len(members) < 2:
            raise ValueError(f'a committee needs at least 2 members, got {len(members)}')
        if any(not isinstance(m, ModelData) or not m.is_stored for m in members):
            raise ValueError('committee members must be stored ModelData nodes')
        species = {tuple(m.species) for m in members}
        if len(species) != 1:
            raise ValueError(f'committee members know different species: {sorted(species)}')
        self.base.attributes.set_many(
            {
                'member_uuids': [m.uuid for m in members],
                'size': len(members),
                'species': list(next(iter(species))),
                'has_bec': all(m.has_bec for m in members),
                'seeds': [m.seed for m in members],
                'dataset_uuids': sorted({m.dataset_uuid for m in members}),
            }
        )

    size = property(lambda self: self.base.attributes.get('size'))
    species = property(lambda self: self.base.attributes.get('species'))
    has_bec = property(lambda self: self.base.attributes.get('has_bec'))

    @property
    def members(self) -> list[ModelData]:
        return [orm.load_node(uuid) for uuid in self.base.attributes.get('member_uuids')]

    @contextlib.contextmanager
    def evaluator(self, device: str = 'cpu'):
        """A :class:`~ionfield.models.potential.disagreement.CommitteeEvaluator` over the member packages."""
        from ionfield.models.potential.disagreement import CommitteeEvaluator

        with tempfile.TemporaryDirectory() as tmp:
            paths = [m.export(Path(tmp) / f'member{i}.nequip.zip') for i, m in enumerate(self.members)]
            yield CommitteeEvaluator(paths, device=device, has_bec=self.has_bec)
