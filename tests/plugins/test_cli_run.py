"""``ionfield run`` refuses what the pipeline cannot do before anything is submitted, naming what to change."""

from __future__ import annotations

import pytest

from .test_cli_train import invoke, n_processes


@pytest.fixture
def profile_codes(aiida_profile, train_code, md_code, qe_engine):
    """The codes ``ionfield setup`` would have recorded in the profile (pw, ph, the pseudo family)."""
    from ionfield.plugins.setup.settings import get_settings, update_settings

    before = get_settings()
    update_settings(
        codes={'pw': qe_engine['pw_code'].full_label, 'ph': qe_engine['ph_code'].full_label},
        pseudo_family=qe_engine['pseudo_family'],
    )
    yield
    update_settings(**{key: before.get(key) for key in ('codes', 'pseudo_family')})


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('alpha-Li3N', '--protocol', 'quick'), 'quick'),
        (('alpha-Li3N', '--set', 'no_such=1'), 'no_such'),
        (('alpha-Li3N', '--defect', 'frenkel', '--explore-supercell', '1x1x1'), 'Frenkel pair'),
        (('alpha-AgI', '--protocol', 'fast'), 'has no Li, the mobile species'),
        (('alpha-Li3N', '--set', 'active_learning.settings.fields=[[0, 0, 0]]'), 'no field along that direction'),
        (('alpha-Li3N', '--set', 'active_learning.settings.temperatures_K=[300]'), 'above the highest explored'),
        (
            (
                'alpha-Li3N',
                '--set',
                'active_learning.settings.initial_bec_fraction=0',
                '--set',
                'active_learning.settings.bec_fraction=0',
            ),
            'DFPT budget is zero',
        ),
        (('alpha-Li3N', '--set', 'validation.settings.lattice=[0.02, 0.01]'), 'lattice thresholds are out of order'),
        ((), 'give at least one STRUCTURE'),
    ],
)
def test_bad_input_is_refused_before_submitting(profile_codes, args, message):
    before = n_processes()
    result = invoke('run', *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert n_processes() == before


def test_a_dry_run_prints_the_plan_of_the_main_job(profile_codes):
    before = n_processes()
    result = invoke('run', 'alpha-Li3N', '--protocol', 'fast', '--dry-run')
    assert result.exit_code == 0, result.output
    assert 'explored cell 2x2x1 and the primitive cell; defect charged x1 Li' in result.output
    assert 'explored: T [500.0, 650.0, 800.0] K' in result.output
    assert n_processes() == before
