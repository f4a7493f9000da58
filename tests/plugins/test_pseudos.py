"""The pslibrary generation table, the ld1.x run and the re-wrap that makes pw.x 6.7 read the files."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ionfield.plugins.setup import pseudos

from ..conftest import SHARED, requires_qe

PSLIBRARY = SHARED / 'data' / 'pslibrary-1.0.0'


def _job_input(job: str, filename_stem: str) -> str:
    """The heredoc of ``filename_stem`` in a pslibrary job file, with the PBE scalar-relativistic variables set."""
    text = (PSLIBRARY / job).read_text()
    match = re.search(rf'cat > {re.escape(filename_stem)}\.in << EOF\n(.*?)\nEOF', text, re.S)
    assert match, filename_stem
    return match.group(1).replace('$fct', 'pbe').replace('$nrel', '1').replace('$gfun', 'PBE')


def _namelist_values(text: str) -> dict:
    values = {}
    for key, value in re.findall(r'(\w+)\s*=\s*([^,\n]+)', text):
        values[key] = value.strip().strip("'").rstrip('.').lower()
    return values


@pytest.mark.skipif(not PSLIBRARY.exists(), reason='../shared/data/pslibrary-1.0.0 is not available')
@pytest.mark.parametrize('element', pseudos.DEFAULT_ELEMENTS)
def test_rendered_input_has_the_published_parameters(element):
    """Our table re-expresses pslibrary 1.0.0: every namelist value and wavefunction line must match."""
    recipe = pseudos.load_recipes()[element]
    published = _job_input(recipe.source, recipe.filename.removesuffix('.UPF').replace('.pbe-', '.$fct-'))
    ours = pseudos.render_ld1_input(recipe)
    norm = lambda v: str(float(v)) if re.fullmatch(r'-?[\d.]+', v) else v  # noqa: E731
    assert {k: norm(v) for k, v in _namelist_values(ours).items()} == {
        k: norm(v) for k, v in _namelist_values(published).items()
    }
    wavefunctions = lambda text: [line.split() for line in text.splitlines() if re.match(r'^\d[SPDF] ', line)]  # noqa: E731
    assert wavefunctions(ours) == wavefunctions(published)


def test_rewrap_splits_only_long_numeric_lines_and_keeps_every_number():
    numbers = ' '.join(f'{x:.6E}' for x in range(400))
    text = (
        '<PP_MULTIPOLES type="real" size="400">\n' + numbers + '\n</PP_MULTIPOLES>\n<PP_HEADER a="' + 'x' * 500 + '"/>'
    )
    wrapped = pseudos.rewrap_numeric_lines(text)
    assert max(len(line) for line in wrapped.splitlines() if not line.startswith('<PP_HEADER')) <= 200
    assert wrapped.split('\n')[0] == '<PP_MULTIPOLES type="real" size="400">'
    body = wrapped.split('\n</PP_MULTIPOLES>')[0].split('\n', 1)[1]
    assert body.split() == numbers.split()
    assert '<PP_HEADER a="' + 'x' * 500 + '"/>' in wrapped  # tags are never touched


def test_unknown_element_is_refused_with_the_known_list(tmp_path):
    with pytest.raises(pseudos.PseudoGenerationError, match='no pslibrary recipe for Xx'):
        pseudos.generate_family_files(tmp_path, elements=('Li', 'Xx'))


def test_missing_ld1_gives_the_install_command(tmp_path):
    with pytest.raises(pseudos.PseudoGenerationError, match='apt-get install quantum-espresso'):
        pseudos.generate_family_files(tmp_path, elements=('Li',), ld1='ld1-does-not-exist.x')


@requires_qe
def test_generated_family_cutoffs_cover_ld1_suggestions(tmp_path):
    paths = pseudos.generate_family_files(tmp_path)
    recipes = pseudos.load_recipes()
    assert set(paths) == set(pseudos.DEFAULT_ELEMENTS)
    for element, path in paths.items():
        text = path.read_text()
        assert max(len(line) for line in text.splitlines()) < 1000, element
        wfc, rho = pseudos.suggested_cutoffs(text)
        assert recipes[element].cutoff_wfc >= wfc and recipes[element].cutoff_rho >= rho, element
        assert re.search(rf'element=" ?{element}"', text) and 'functional=" SLA  PW   PBX  PBC"' in text


@requires_qe
def test_truncated_file_from_an_interrupted_setup_is_regenerated(tmp_path):
    (path,) = pseudos.generate_family_files(tmp_path, elements=('Li',)).values()
    complete = path.read_text()
    path.write_text(complete[: len(complete) // 2])
    pseudos.generate_family_files(tmp_path, elements=('Li',))
    assert path.read_text() == complete


LI3N_SCF = """&control
  calculation='scf', pseudo_dir='{pseudo_dir}', outdir='./out', tprnfor=.true.
/
&system
  ibrav=0, nat=4, ntyp=2, ecutwfc=50, ecutrho=400, occupations='fixed'
/
&electrons
  conv_thr=1e-8
/
ATOMIC_SPECIES
Li 6.94 Li.pbe-sl-kjpaw_psl.1.0.0.UPF
N 14.007 N.pbe-n-kjpaw_psl.1.0.0.UPF
CELL_PARAMETERS angstrom
3.648 0 0
-1.824 3.159260673 0
0 0 3.875
ATOMIC_POSITIONS crystal
N 0 0 0
Li 0 0 0.5
Li 0.333333333 0.666666667 0
Li 0.666666667 0.333333333 0
K_POINTS automatic
3 3 3 0 0 0
"""


@requires_qe
@pytest.mark.slow
def test_pw_reads_rewrapped_files_but_not_raw_ld1_output(tmp_path):
    """The reason the re-wrap exists: pw.x 6.7 stops with 'line too long' on ld1.x 6.7's own output."""
    recipes = pseudos.load_recipes()
    good = tmp_path / 'good'
    pseudos.generate_family_files(good, elements=('Li', 'N'))
    raw = tmp_path / 'raw'
    raw.mkdir()
    ld1 = pseudos.render_ld1_input(recipes['Li'])
    subprocess.run(['ld1.x'], input=ld1, cwd=raw, capture_output=True, text=True, check=True)
    (raw / recipes['N'].filename).write_text((good / recipes['N'].filename).read_text())
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'OMPI_ALLOW_RUN_AS_ROOT': '1', 'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1'}

    def scf(pseudo_dir):
        (tmp_path / 'pw.in').write_text(LI3N_SCF.format(pseudo_dir=pseudo_dir))
        return subprocess.run(
            ['pw.x', '-in', 'pw.in'], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
        )

    ok = scf(good)
    assert ok.returncode == 0, ok.stdout[-2000:]
    energy = float(re.search(r'!\s+total energy\s+=\s+(-?[\d.]+) Ry', ok.stdout).group(1))
    assert -73.6 < energy < -73.3  # Li3N, 50/400 Ry PAW: -73.466 Ry at k 4x4x4
    refused = scf(raw)
    assert refused.returncode != 0 and 'line too long' in refused.stdout + refused.stderr
