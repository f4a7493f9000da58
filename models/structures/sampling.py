"""Structure sampling for the labelling stage: supercells, rattled copies, strained copies, file reading.

A potential only learns the part of configuration space that its training frames cover. Rattled
copies sample the forces around equilibrium, strained copies sample the stress, and supercells give
the periodic images room for the displacements; all of them start from a reference structure.

Plain Python (numpy + ASE) so that it runs in a notebook or on a compute node; the calcfunctions in
``ionfield.workflows.structures.functions`` wrap it so that the provenance graph shows how every frame was made.

Randomness: every random function takes a ``seed`` and draws copy ``k`` from its own generator
``numpy.random.default_rng([seed, k, stream])`` (``stream`` differs between rattling and straining).
So copy ``k`` does not depend on how many copies are asked for (``rattle(..., count=3)[:2]`` equals
``rattle(..., count=2)``) and a rattle and a strain drawn with the same seed are not correlated.
The numbers are reproducible for a given numpy version (numpy does not promise identical streams
across versions); the AiiDA wrappers store the structures themselves, which is the lasting record.

Invalid arguments raise ``ValueError`` with a message that says what was wrong and what is allowed.
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Sequence

import ase.io
import numpy as np
from ase import Atoms
from ase.build import make_supercell as _ase_make_supercell

__all__ = (
    'STRUCTURE_FORMATS',
    'guess_format',
    'make_supercell',
    'random_strains',
    'rattle',
    'read_structure',
    'strain',
    'strain_tensor',
)

STRUCTURE_FORMATS = ('cif', 'vasp', 'extxyz')
"""The file formats ``read_structure`` accepts (ASE format names); 'poscar' and 'xyz' are aliases."""

_FORMAT_ALIASES = {'cif': 'cif', 'vasp': 'vasp', 'poscar': 'vasp', 'extxyz': 'extxyz', 'xyz': 'extxyz'}
_SUFFIX_FORMATS = {'.cif': 'cif', '.vasp': 'vasp', '.poscar': 'vasp', '.xyz': 'extxyz', '.extxyz': 'extxyz'}
_VASP_NAMES = ('POSCAR', 'CONTCAR')

_STREAM_RATTLE = 0
_STREAM_STRAIN = 1

MAX_RANDOM_STRAIN = 1 / 3
"""Exclusive upper bound of ``max_strain`` in ``random_strains``: below it ``I + eps`` is always positive definite."""

IntMatrix = int | Sequence[int] | Sequence[Sequence[int]] | np.ndarray
StrainLike = float | Sequence[float] | Sequence[Sequence[float]] | np.ndarray


def remove_atoms(atoms: Atoms, species: str, count: int = 1) -> Atoms:
    """Return ``atoms`` without the first ``count`` atoms of ``species`` (vacancies).

    A perfect crystal has no carriers for vacancy hops (Li3N conducts through Li vacancies), so MD
    of transport usually starts from a supercell with one or a few vacancies. The first atoms are
    taken so the result is reproducible; ``info['vacancies']`` records what was removed.
    """
    indices = [atom.index for atom in atoms if atom.symbol == species]
    if count < 1:
        raise ValueError(f'the number of vacancies must be >= 1, got {count}')
    if len(indices) <= count:
        raise ValueError(f'cannot remove {count} {species}: the structure has {len(indices)}')
    removed = indices[:count]
    result = atoms[[i for i in range(len(atoms)) if i not in set(removed)]]
    result.info = {**_derived_info(atoms), 'vacancies': {'species': species, 'indices': removed}}
    return result


def make_supercell(atoms: Atoms, matrix: IntMatrix) -> Atoms:
    """Return the supercell whose lattice vectors are ``matrix @ atoms.cell`` (rows are lattice vectors).

    ``matrix`` is one integer (the same repetition along the three vectors), three integers (a diagonal
    repetition) or a 3x3 integer matrix (any supercell, e.g. a more cubic one). A non-integer entry would
    not give a lattice of the crystal and a singular or left-handed matrix no valid cell, so both are refused.
    The atoms are ordered cell by cell (all atoms of the first image, then the next); ``info['supercell']``
    records the matrix and ``info['source']`` is kept.
    """
    transformation = _integer_matrix(matrix)
    determinant = int(round(np.linalg.det(transformation)))
    if determinant == 0:
        raise ValueError(f'the supercell matrix {transformation.tolist()} is singular (determinant 0)')
    if determinant < 0:
        raise ValueError(
            f'the supercell matrix {transformation.tolist()} has a negative determinant ({determinant}) and would '
            'give a left-handed cell; swap two rows or change the sign of one row'
        )
    supercell = _ase_make_supercell(atoms, transformation)
    supercell.info = {**_derived_info(atoms), 'supercell': transformation.tolist()}
    return supercell


def rattle(atoms: Atoms, stdev: float, seed: int, count: int = 1) -> list[Atoms]:
    """Return ``count`` copies of ``atoms``, each atom displaced by a Gaussian of ``stdev`` Å per Cartesian axis.

    Copy ``k`` uses the generator ``default_rng([seed, k, 0])``: reproducible from ``seed`` and independent
    of ``count`` (see the module docstring). ``stdev = 0`` gives unchanged copies. The cell is kept and the
    positions are not wrapped back into it. ``info['rattle']`` records ``stdev``, ``seed`` and ``index``.
    A typical choice for force labels is 0.01-0.1 Å (a few per cent of a bond length).
    """
    seed = _check_seed(seed)
    count = _check_count(count)
    stdev = float(stdev)
    if not np.isfinite(stdev) or stdev < 0:
        raise ValueError(f'the rattle standard deviation must be a finite number >= 0 Å, got {stdev}')
    copies = []
    for index in range(count):
        rng = np.random.default_rng([seed, index, _STREAM_RATTLE])
        copy = atoms.copy()
        copy.info = _derived_info(atoms)
        copy.positions = atoms.positions + rng.normal(0.0, stdev, size=(len(atoms), 3))
        copy.info['rattle'] = {'stdev': stdev, 'seed': seed, 'index': index}
        copies.append(copy)
    return copies


def strain_tensor(value: StrainLike) -> np.ndarray:
    """Return the symmetric 3x3 small-strain tensor ``eps`` described by ``value``.

    ``value`` is one of:

    - a number ``s``: isotropic strain, ``eps = s * I`` (the volume changes by ``(1 + s)**3``);
    - six numbers in Voigt order ``(xx, yy, zz, yz, xz, xy)`` with *engineering* shear strains
      (``gamma_yz = 2 eps_yz``), the convention of elasticity texts and of pymatgen's ``Strain.from_voigt``;
    - a symmetric 3x3 matrix (an antisymmetric part would be a rotation, not a strain, so it is refused).
    """
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f'a strain is a number, 6 numbers or a 3x3 matrix of numbers; got {value!r}') from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f'the strain must be finite, got {array.tolist()}')
    if array.shape == ():
        eps = float(array) * np.eye(3)
    elif array.shape == (6,):
        xx, yy, zz, yz, xz, xy = array
        eps = np.array([[xx, xy / 2, xz / 2], [xy / 2, yy, yz / 2], [xz / 2, yz / 2, zz]])
    elif array.shape == (3, 3):
        if not np.allclose(array, array.T, rtol=0, atol=1e-10):
            raise ValueError(f'the strain tensor must be symmetric (a rotation is not a strain), got {array.tolist()}')
        eps = (array + array.T) / 2
    else:
        raise ValueError(
            f'a strain is a number (isotropic), 6 Voigt numbers or a symmetric 3x3 matrix; got shape {array.shape}'
        )
    return eps


def strain(atoms: Atoms, strain: StrainLike) -> Atoms:
    """Return a copy of ``atoms`` with the cell ``cell @ (I + eps)`` and the same scaled positions.

    ``strain`` is parsed by ``strain_tensor``. Keeping the fractional coordinates deforms the crystal
    homogeneously, which is what the stress label of a strained frame refers to. A strain that inverts or
    collapses the cell (``det(I + eps) <= 0``) is refused. ``info['strain']`` records the 3x3 tensor.
    """
    eps = strain_tensor(strain)
    deformation = np.eye(3) + eps
    if np.linalg.det(deformation) <= 0:
        raise ValueError(f'the strain {eps.tolist()} collapses or inverts the cell (det(I + eps) <= 0)')
    strained = atoms.copy()
    strained.info = _derived_info(atoms)
    strained.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
    strained.info['strain'] = eps.tolist()
    return strained


def random_strains(atoms: Atoms, max_strain: float, seed: int, count: int = 1) -> list[Atoms]:
    """Return ``count`` copies of ``atoms``, each under its own random symmetric strain.

    The six independent components ``eps_ij`` (i <= j, tensor not engineering shear) are drawn uniformly
    from ``[-max_strain, max_strain]`` with the generator ``default_rng([seed, k, 1])`` for copy ``k``.
    ``max_strain`` must lie in ``[0, 1/3)``: every eigenvalue of such an ``eps`` is above ``-3 max_strain``,
    so ``I + eps`` stays positive definite. Stress labels want small strains, typically 0.005-0.03.
    """
    seed = _check_seed(seed)
    count = _check_count(count)
    max_strain = float(max_strain)
    if not np.isfinite(max_strain) or not 0 <= max_strain < MAX_RANDOM_STRAIN:
        raise ValueError(f'max_strain must lie in [0, 1/3) (a small strain), got {max_strain}')
    copies = []
    upper = np.triu_indices(3)
    for index in range(count):
        rng = np.random.default_rng([seed, index, _STREAM_STRAIN])
        eps = np.zeros((3, 3))
        eps[upper] = rng.uniform(-max_strain, max_strain, size=6)
        eps = eps + np.triu(eps, 1).T
        copy = strain(atoms, eps)
        copy.info['random_strain'] = {'max_strain': max_strain, 'seed': seed, 'index': index}
        copies.append(copy)
    return copies


def guess_format(name: str | None, content: bytes | str | None = None) -> str | None:
    """Return the ASE format of a structure file from its name, else from its content; ``None`` if unknown.

    Names: ``*.cif``; ``POSCAR*``, ``CONTCAR*``, ``*.vasp``, ``*.poscar``; ``*.xyz``, ``*.extxyz``.
    Content: a CIF has a ``data_`` block and ``_cell_length_a``; an (ext)xyz file starts with the number
    of atoms; a POSCAR has a scaling factor on its second line.
    """
    if name:
        path = pathlib.PurePath(name)
        if path.suffix.lower() in _SUFFIX_FORMATS:
            return _SUFFIX_FORMATS[path.suffix.lower()]
        if path.name.upper().startswith(_VASP_NAMES):
            return 'vasp'
    if content is None:
        return None
    text = content.decode('utf-8', errors='replace') if isinstance(content, bytes) else content
    lines = [line.strip() for line in text.splitlines()]
    if any(line.startswith('data_') for line in lines) and '_cell_length_a' in text:
        return 'cif'
    first = next((line for line in lines if line), '')
    if first.isdigit():
        return 'extxyz'
    if len(lines) > 2 and _is_poscar_scale(lines[1]):
        return 'vasp'
    return None


def read_structure(
    path_or_bytes: str | os.PathLike | bytes, format: str | None = None, name: str | None = None
) -> Atoms:
    """Read one crystal structure from a CIF, POSCAR/CONTCAR or (ext)xyz file, given as a path or as bytes.

    ``format`` ('cif', 'vasp'/'poscar', 'extxyz'/'xyz') is guessed from the file name, else from the
    content, when not given. ``name`` names bytes in messages and in the guess. A file that cannot be
    read, or that holds no atoms, several frames or partial occupancies (a disordered CIF would otherwise
    become a structure with every partially occupied site filled), raises ``ValueError`` naming the file;
    a missing path raises ``FileNotFoundError``. ``info['source']`` records the file name.
    """
    if isinstance(path_or_bytes, bytes | bytearray):
        content = bytes(path_or_bytes)
        label = name or '<bytes>'
    else:
        path = pathlib.Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f'structure file `{path}` does not exist')
        content = path.read_bytes()
        label = name or str(path)
        name = name or path.name

    if format is None:
        format = guess_format(name, content)
        if format is None:
            raise ValueError(
                f'cannot tell the format of `{label}` from its name or content; pass format= one of '
                f'{", ".join(_FORMAT_ALIASES)}'
            )
    elif format.lower() not in _FORMAT_ALIASES:
        raise ValueError(
            f'unsupported structure format `{format}` for `{label}`; use one of {", ".join(_FORMAT_ALIASES)}'
        )
    format = _FORMAT_ALIASES[format.lower()]

    try:
        text = content.decode('utf-8')
    except UnicodeDecodeError as exception:
        raise ValueError(f'`{label}` is not a text file ({exception})') from None
    try:
        frames = ase.io.read(io.StringIO(text), index=':', format=format)
    except Exception as exception:  # ASE raises anything from AssertionError to StopIteration on a bad file
        detail = f'{type(exception).__name__}: {exception}'.rstrip(': ')
        raise ValueError(f'could not read `{label}` as {format}: {detail}') from exception

    if len(frames) != 1:
        raise ValueError(f'`{label}` holds {len(frames)} structures; read_structure reads files with exactly one')
    atoms = frames[0]
    if len(atoms) == 0:
        raise ValueError(f'`{label}` holds no atoms')
    partial = _partial_occupancies(atoms)
    if partial:
        raise ValueError(
            f'`{label}` has partial occupancies ({partial}); build an ordered model first '
            '(a disordered site would be filled by every species on it)'
        )
    atoms.info.pop('occupancy', None)
    atoms.info['source'] = f'read from {label} ({format})'
    return atoms


def _derived_info(atoms: Atoms) -> dict:
    """``atoms.info`` less what a sampled copy no longer has (the space group and cell kind from ASE's ``crystal``)."""
    return {key: value for key, value in atoms.info.items() if key not in ('spacegroup', 'unit_cell', 'occupancy')}


def _integer_matrix(matrix: IntMatrix) -> np.ndarray:
    try:
        array = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f'a supercell matrix must be numbers, got {matrix!r}') from None
    if array.shape == ():
        array = np.full(3, float(array))
    if array.shape == (3,):
        array = np.diag(array)
    if array.shape != (3, 3):
        raise ValueError(f'a supercell matrix is 1 integer, 3 integers or 3x3 integers; got shape {array.shape}')
    if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
        raise ValueError(f'a supercell matrix must hold integers, got {array.tolist()}')
    return array.astype(int)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f'the seed must be an integer >= 0, got {seed!r}')
    return int(seed)


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ValueError(f'the number of copies must be an integer >= 1, got {count!r}')
    return int(count)


def _is_poscar_scale(line: str) -> bool:
    try:
        values = [float(word) for word in line.split()]
    except ValueError:
        return False
    return len(values) in (1, 3)


def _partial_occupancies(atoms: Atoms) -> str:
    """The sites of a CIF read by ASE whose occupancy is below 1, as 'Ag 0.167, ...' ('' when ordered)."""
    occupancy = atoms.info.get('occupancy') or {}
    partial = [
        f'{symbol} {fraction:g}'
        for site in occupancy.values()
        for symbol, fraction in site.items()
        if fraction < 1 - 1e-3
    ]
    return ', '.join(sorted(set(partial)))
