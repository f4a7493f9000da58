"""Generate the pslibrary-1.0.0 PBE PAW pseudopotentials with ld1.x and install them as a family.

Debian's ``quantum-espresso-data`` has no consistent PBE set (Li only as PBEsol, no P), and no file
may be downloaded from outside the package registries, so the family is *generated* at set-up time
from a table of published pslibrary parameters (``pslibrary.yaml``). ld1.x 6.7 writes numeric lines
longer than pw.x 6.7 accepts ("line too long" in PP_MULTIPOLES), so the files are re-wrapped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import yaml

__all__ = (
    'PSLIBRARY_FAMILY_LABEL',
    'PseudoRecipe',
    'PseudoGenerationError',
    'load_recipes',
    'render_ld1_input',
    'rewrap_numeric_lines',
    'suggested_cutoffs',
    'generate_pseudo',
    'generate_family_files',
    'install_pslibrary_family',
)

PSLIBRARY_FAMILY_LABEL = 'ionfield/pslibrary-1.0.0/PBE/PAW'
"""Label of the aiida-pseudo family that ``ionfield setup`` installs."""

DEFAULT_ELEMENTS = ('Li', 'N', 'O', 'P', 'Ag', 'I')
"""The elements of the reference systems (Li3N, Li3PO4, LiPON, AgI)."""

MAX_LINE_LENGTH = 200
"""Numeric lines longer than this are re-wrapped (pw.x 6.7 refuses lines over 1000 characters)."""

_NUMBER = re.compile(r'^[\s0-9eEdD+\-.]+$')


class PseudoGenerationError(RuntimeError):
    """Raised when ld1.x is missing or fails to produce a usable pseudopotential."""


@dataclasses.dataclass(frozen=True)
class PseudoRecipe:
    """Everything ld1.x needs to regenerate one pslibrary pseudopotential, plus its cutoffs."""

    element: str
    filename: str
    source: str
    zed: float
    config: str
    inputp: dict
    wavefunctions: tuple[str, ...]
    cutoff_wfc: float
    cutoff_rho: float


def load_recipes(functional: str = 'PBE') -> dict[str, PseudoRecipe]:
    """Return the generation table, keyed by element symbol."""
    text = resources.files('ionfield.plugins.setup').joinpath('pslibrary.yaml').read_text()
    table = yaml.safe_load(text)
    if table['functional'] != functional:
        raise ValueError(f'the generation table is for {table["functional"]}, not {functional}')
    recipes = {}
    for element, entry in table['elements'].items():
        recipes[element] = PseudoRecipe(
            element=element,
            filename=entry['filename'],
            source=entry['source'],
            zed=float(entry['zed']),
            config=entry['config'],
            inputp=dict(entry['inputp']),
            wavefunctions=tuple(entry['wavefunctions']),
            cutoff_wfc=float(entry['cutoffs']['wfc']),
            cutoff_rho=float(entry['cutoffs']['rho']),
        )
    return recipes


def _fortran(value) -> str:
    if isinstance(value, bool):
        return '.true.' if value else '.false.'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return f"'{value}'"


def render_ld1_input(recipe: PseudoRecipe, relativistic: int = 1, dft: str = 'PBE') -> str:
    """Render the ld1.x input of ``recipe`` (same namelists as the pslibrary job files)."""
    inp = {
        'title': recipe.element,
        'zed': recipe.zed,
        'rel': relativistic,
        'config': recipe.config,
        'iswitch': 3,
        'dft': dft,
    }
    inputp = {
        'lpaw': True,
        'pseudotype': 3,
        'file_pseudopw': recipe.filename,
        'author': 'ADC',
        **recipe.inputp,
    }
    lines = [' &input']
    lines += [f'   {key}={_fortran(value)},' for key, value in inp.items()]
    lines += [' /', ' &inputp']
    lines += [f'   {key}={_fortran(value)},' for key, value in inputp.items()]
    lines += [' /', str(len(recipe.wavefunctions))]
    lines += list(recipe.wavefunctions)
    return '\n'.join(lines) + '\n'


def rewrap_numeric_lines(text: str, max_length: int = MAX_LINE_LENGTH, per_line: int = 4) -> str:
    """Split purely numeric lines longer than ``max_length`` into lines of ``per_line`` numbers.

    Only lines made of numbers and whitespace are touched, so XML tags and attributes are kept
    verbatim; the UPF parser reads numeric blocks as whitespace-separated streams, so the values
    and their order are unchanged.
    """
    out = []
    for line in text.splitlines():
        if len(line) > max_length and _NUMBER.match(line):
            tokens = line.split()
            for start in range(0, len(tokens), per_line):
                out.append('  ' + '  '.join(tokens[start : start + per_line]))
        else:
            out.append(line)
    return '\n'.join(out) + '\n'


def suggested_cutoffs(upf_text: str) -> tuple[float, float]:
    """Return ld1.x's suggested minimum (wavefunction, density) cutoffs in Ry from a UPF header."""
    wfc = re.search(r'wfc_cutoff="([0-9.Ee+\-]+)"', upf_text)
    rho = re.search(r'rho_cutoff="([0-9.Ee+\-]+)"', upf_text)
    if not wfc or not rho:
        raise PseudoGenerationError('no wfc_cutoff/rho_cutoff in the UPF header')
    return float(wfc.group(1)), float(rho.group(1))


def find_ld1(executable: str = 'ld1.x') -> str:
    path = shutil.which(executable)
    if path is None:
        raise PseudoGenerationError(
            f'`{executable}` not found on PATH. Install Quantum ESPRESSO: '
            '`sudo apt-get install quantum-espresso quantum-espresso-data` (Debian/Ubuntu).'
        )
    return path


def generate_pseudo(recipe: PseudoRecipe, destination: Path, ld1: str = 'ld1.x', timeout: float = 120) -> Path:
    """Run ld1.x for ``recipe`` in a scratch folder and write the re-wrapped UPF into ``destination``."""
    executable = find_ld1(ld1)
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f'ld1-{recipe.element}-') as workdir:
        stdin = render_ld1_input(recipe)
        Path(workdir, 'ld1.in').write_text(stdin)
        env = {**os.environ, 'OMP_NUM_THREADS': '1'}
        result = subprocess.run(
            [executable], input=stdin, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
        )
        produced = Path(workdir, recipe.filename)
        if result.returncode != 0 or not produced.exists():
            tail = '\n'.join((result.stdout + result.stderr).splitlines()[-15:])
            raise PseudoGenerationError(f'ld1.x failed for {recipe.element} (exit code {result.returncode}):\n{tail}')
        text = rewrap_numeric_lines(produced.read_text())
    wfc, rho = suggested_cutoffs(text)
    if not (math.isfinite(wfc) and math.isfinite(rho)):
        raise PseudoGenerationError(f'ld1.x produced a pseudo for {recipe.element} with non-finite cutoffs')
    target = destination / recipe.filename
    target.write_text(text)
    return target


def generate_family_files(
    destination: Path, elements=DEFAULT_ELEMENTS, ld1: str = 'ld1.x', recipes: dict | None = None
) -> dict[str, Path]:
    """Generate the UPF files of ``elements`` into ``destination``; reuse files that are already valid."""
    recipes = recipes or load_recipes()
    unknown = sorted(set(elements) - set(recipes))
    if unknown:
        raise PseudoGenerationError(
            f'no pslibrary recipe for {", ".join(unknown)}; known: {", ".join(sorted(recipes))}. '
            'Use an installed family instead (e.g. `aiida-pseudo install sssp`).'
        )
    paths = {}
    for element in elements:
        recipe = recipes[element]
        existing = destination / recipe.filename
        if existing.exists() and _is_complete_upf(existing):
            paths[element] = existing
            continue
        paths[element] = generate_pseudo(recipe, destination, ld1=ld1)
    return paths


def _is_complete_upf(path: Path) -> bool:
    """A file left by an interrupted set-up is regenerated, not trusted."""
    try:
        text = path.read_text()
    except OSError:
        return False
    return text.rstrip().endswith('</UPF>') and all(len(line) <= 1000 for line in text.splitlines())


def family_checksum(paths: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for element in sorted(paths):
        digest.update(paths[element].read_bytes())
    return digest.hexdigest()


def install_pslibrary_family(
    directory: Path, label: str = PSLIBRARY_FAMILY_LABEL, elements=DEFAULT_ELEMENTS, ld1: str = 'ld1.x'
):
    """Generate (if needed) and install the family in the loaded profile; idempotent.

    Returns ``(family, created)``. An existing family with the same label is reused when it holds the
    same elements; otherwise a clear error is raised and the existing family is left untouched.
    """
    from aiida.orm import QueryBuilder
    from aiida_pseudo.data.pseudo.upf import UpfData
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    recipes = load_recipes()
    query = QueryBuilder().append(CutoffsPseudoPotentialFamily, filters={'label': label})
    if query.count():
        family = query.one()[0]
        missing = sorted(set(elements) - set(family.elements))
        if missing:
            raise PseudoGenerationError(
                f'the pseudo family `{label}` exists but lacks {", ".join(missing)}; it is left as is. '
                f'Delete it with `verdi group delete "{label}"` and run the set-up again.'
            )
        return family, False

    paths = generate_family_files(directory, elements=elements, ld1=ld1, recipes=recipes)
    with tempfile.TemporaryDirectory() as staging:
        for path in paths.values():
            shutil.copy(path, staging)
        try:
            family = CutoffsPseudoPotentialFamily.create_from_folder(
                Path(staging),
                label,
                description=(
                    'pslibrary 1.0.0 PBE PAW (A. Dal Corso, Comput. Mater. Sci. 95, 337 (2014)), '
                    'generated with ld1.x by aiida-ionfield; checksum ' + family_checksum(paths)[:12]
                ),
                pseudo_type=UpfData,
            )
        except ValueError as exception:
            raise PseudoGenerationError(f'could not install the family `{label}`: {exception}') from exception
    cutoffs = {el: {'cutoff_wfc': recipes[el].cutoff_wfc, 'cutoff_rho': recipes[el].cutoff_rho} for el in paths}
    family.set_cutoffs(cutoffs, 'normal', unit='Ry')  # the only stringency, so also the default
    return family, True
