"""Transport analysis on synthetic trajectories whose D, anisotropy and drift are known."""

from __future__ import annotations

import ast
import dataclasses
import re

import numpy as np
import pytest

from ionfield.models.transport.arrhenius import arrhenius_fit
from ionfield.models.transport.campaign import summarise_campaign
from ionfield.models.transport.condition import analyse_condition, condition_key
from ionfield.models.transport.diffusion import (
    KinisiDisplacements,
    conductivity_factor,
    counted_over_the_run,
    lag_indices,
)
from ionfield.models.transport.drift import linear_response
from ionfield.models.transport.plots import campaign_plots
from ionfield.models.transport.replicas import (
    AnalysisOptions,
    ReplicaSet,
    TransportInputError,
    rotation_to_field,
)
from ionfield.models.transport.report import html_report
from ionfield.models.transport.settings import CampaignInputError, CampaignSettings

from ...conftest import REPO
from ..transport_synthetic import brownian, vibrating

FAST = AnalysisOptions(n_samples=200, n_intervals=40)
DOCS = REPO / 'docs' / 'campaign.md'
D_TRUE = 1e-5  # cm²/s, brownian()'s default
A2_PER_FS = 10.0  # Å²/fs per cm²/s


def within(estimate: dict, truth: float, relative: float) -> bool:
    """The truth is inside 3 of kinisi's standard deviations, and the estimate within ``relative`` of it.

    ``relative`` is what the method delivers with 2 replicas x 32 walkers x 1000 frames (FAST options),
    measured over 8-12 seed pairs: the error of D (x+y+z) had a spread of 2.3 % (largest 4.8 %), of D
    along one axis 4-5 % (largest 12.6 %), of D across (two axes) 3.5 % (largest 8.6 %); so 0.1 for
    x+y+z and 0.2 for one or two axes: about 4 times the spread, 1.6-2 times the largest error seen.
    kinisi's standard deviation was never smaller than the error / 1.7 (it is conservative here).
    """
    error = abs(estimate['mean'] - truth)
    return error <= 3 * estimate['std'] and error <= relative * truth


@pytest.fixture(scope='module')
def isotropic():
    return analyse_condition([brownian(0), brownian(1)], 600, options=FAST, structure='toy')


def test_tracer_diffusion_is_recovered_with_its_error(isotropic):
    d = isotropic.summary['species']['Li']['D']
    assert within(d['xyz'], D_TRUE, 0.1)
    assert d['xyz']['std'] < 0.08 * D_TRUE  # kinisi's was 3.7-4.7 % of D over 12 seed pairs
    assert d['xyz']['ci95'][0] < d['xyz']['mean'] < d['xyz']['ci95'][1]
    # Li is the default mobile ion, N the framework (its wander is removed)
    assert isotropic.summary['mobile_species'] == ['Li']
    assert 'N' not in isotropic.summary['species']


def test_framework_wander_is_removed_before_the_msd():
    # the whole cell wanders by 0.2 Å per frame (a thermostatted centre of mass), Li do not diffuse in it
    runs = [brownian(seed, d_cm2_s=(0, 0, 0), framework_wander_A=0.2) for seed in (0, 1)]
    raw = ReplicaSet.from_trajectories(runs)
    li = raw.indices('Li')
    assert (raw.displacements[:, -1, li] ** 2).sum(-1).mean() > 10  # before the correction: tens of Å²
    corrected = raw.framework_corrected(['Li'])
    assert (corrected[:, -1, li] ** 2).sum(-1).mean() < 0.1


def test_conductivities_of_independent_ions(isotropic):
    li = isotropic.summary['species']['Li']
    assert li['D_collective']['status'] == li['haven_ratio']['status'] == 'ok'
    ne = li['conductivity_nernst_einstein']
    factor = conductivity_factor(32, 12.0**3, 1.0, 600)
    assert ne['mean'] == pytest.approx(factor * li['D']['xyz']['mean'], rel=1e-9)


def test_haven_ratio_of_independent_ions_is_one():
    """Uncorrelated ions: D_J = D* and H = D*/D_J = 1.

    D_J comes from one centre of mass per replica, so its precision grows with the replicas, not the
    ions: 16 replicas of 4 walkers (as many walkers as the 2 x 32 of the other tests). Over 8 seed sets
    kinisi's standard deviation of H was 0.08-0.11 and the error of its mean at most 1.4 of them.
    """
    runs = [brownian(100 + replica, n_mobile=4) for replica in range(16)]
    li = analyse_condition(runs, 600, options=FAST, structure='toy').summary['species']['Li']
    haven, collective = li['haven_ratio'], li['D_collective']
    assert haven['std'] < 0.15
    assert abs(haven['mean'] - 1) < 3 * haven['std']
    assert haven['ci95'][0] < 1 < haven['ci95'][1]
    assert within(collective, D_TRUE, 0.25)  # largest error over the 8 seed sets: 12 %


def test_anisotropy_and_along_across_the_field():
    runs = [brownian(seed, d_cm2_s=(2e-5, 2e-5, 0.4e-5)) for seed in (0, 1)]
    result = analyse_condition(runs, 600, options=FAST, structure='toy')
    d = result.summary['species']['Li']['D']
    assert within(d['x'], 2e-5, 0.2) and within(d['z'], 0.4e-5, 0.2)
    assert d['x']['mean'] / d['z']['mean'] > 2.5
    summary = summarise_campaign([result.summary])
    (entry,) = summary['anisotropy']
    assert entry['xy_over_z'] > 2.5
    # a field along x: "along" is x, "across" is y and z
    field_run = analyse_condition(runs, 600, field=(0.05, 0, 0), options=FAST, structure='toy')
    d = field_run.summary['species']['Li']['D']
    assert within(d['along'], 2e-5, 0.2)
    assert within(d['across'], 1.2e-5, 0.2)


def test_drift_and_mobility_are_recovered():
    v = 2e-4  # Å/fs along the field (y)
    runs = [brownian(seed, drift_A_fs=(0, v, 0)) for seed in (0, 1)]
    result = analyse_condition(runs, 600, field=(0, 0.1, 0), options=FAST, structure='toy')
    drift = result.summary['species']['Li']['drift']
    assert drift['velocity_along_A_per_fs'] == pytest.approx(v, abs=4 * drift['velocity_along_error_A_per_fs'])
    assert drift['significance_sigma'] > 5
    assert drift['mobility_cm2_per_Vs'] == pytest.approx(v / 0.1 * 0.1, rel=0.2)
    # MSD along E includes the drift: enhanced over across
    msd = result.summary['species']['Li']['msd_final_A2']
    assert msd['along'] > 2 * msd['across'] / 2


def test_diffusion_along_the_field_is_fitted_without_the_drift(isotropic):
    """Brownian walkers (D = 1e-5 cm²/s) drifting at v along E: MSD along E = 2Dt + (vt)², D along E = D.

    v = 5e-4 Å/fs makes (vt)² six times 2Dt at the longest interval; fitted with the drift in (and lags
    to the whole run), as before drift_removed, D along E came out 3.5 times too large (3.55 ± 0.25e-5).
    """
    v = 5e-4
    runs = [brownian(seed, drift_A_fs=(0, v, 0)) for seed in (0, 1)]
    result = analyse_condition(runs, 600, field=(0, 0.1, 0), options=FAST, structure='toy')
    li = result.summary['species']['Li']
    assert within(li['D']['along'], D_TRUE, 0.2)
    assert within(li['D']['across'], D_TRUE, 0.2) and within(li['D']['xyz'], D_TRUE, 0.1)
    assert li['drift_removed'] is True
    drift = li['drift']
    assert drift['velocity_along_A_per_fs'] == pytest.approx(v, abs=3 * drift['velocity_along_error_A_per_fs'])
    # the MSD along E keeps the drift (it is what the field enhancement compares): 2Dt + (vt)² at the longest
    # interval, within 25 % (over 8 seed pairs: 2-15 % off, from the noise of the drift and of 64 walkers)
    t = result.summary['max_lag_ps'] * 1000
    assert li['msd_final_A2']['along'] == pytest.approx(2 * D_TRUE * A2_PER_FS * t + (v * t) ** 2, rel=0.25)
    html = html_report(summarise_campaign([result.summary]), [result.summary])
    assert 'under a field is fitted after the drift (velocity × t) is removed' in html
    assert isotropic.summary['species']['Li']['drift_removed'] is False  # E = 0: nothing to remove


@pytest.mark.parametrize('fraction', [0.25, 1.0])
def test_max_lag_fraction_bounds_the_longest_interval(fraction):
    options = dataclasses.replace(FAST, max_lag_fraction=fraction)
    result = analyse_condition([brownian(0), brownian(1)], 600, options=options, structure='toy')
    longest_ps = round(fraction * 999) * 10.0 / 1000  # 1000 frames, 10 fs apart
    assert result.curves['lag_ps'][-1] == pytest.approx(longest_ps)
    assert result.summary['max_lag_ps'] == pytest.approx(longest_ps)
    assert len(result.curves['Li_msd_collective']) == len(result.curves['lag_ps'])  # kinisi's grid is the same
    li = result.summary['species']['Li']
    # the MSD at the longest interval is 6 D t, within 3 of its standard errors
    msd_expected = 6 * D_TRUE * A2_PER_FS * longest_ps * 1000
    assert li['msd_final_A2']['xyz'] == pytest.approx(msd_expected, abs=3 * result.curves['Li_msd_error'][-1])
    assert within(li['D']['xyz'], D_TRUE, 0.1)


def test_a_shorter_lag_grid_keeps_kinisi_variances_of_the_whole_run():
    """kinisi counts independent samples up to the longest lag; counted over the run, they do not depend on it."""
    from kinisi.displacement import calculate_msd

    replicas = ReplicaSet.from_trajectories([brownian(0)])
    displacements = replicas.displacements[:, :, replicas.indices('Li')]
    whole = lag_indices(replicas.n_frames, 40)
    short = whole[whole <= whole[-1] // 3]

    def msd(lags):
        source = KinisiDisplacements(displacements, replicas.frame_fs, lags, replicas.volume_A3)
        return counted_over_the_run(calculate_msd(source, progress=False), source)['da']

    reference, truncated = msd(whole)['time interval', : len(short)], msd(short)
    np.testing.assert_allclose(truncated.values, reference.values, rtol=1e-12)
    np.testing.assert_allclose(truncated.variances, reference.variances, rtol=1e-12)
    np.testing.assert_allclose(truncated.coords['n_samples'].values, reference.coords['n_samples'].values, rtol=1e-12)


def test_rotation_to_field_maps_the_field_on_z():
    for field in [(0, 0, 0.1), (0.1, 0, 0), (0, -0.2, 0), (0.1, 0.2, -0.05), (0, 0, -0.1)]:
        rotation = rotation_to_field(field)
        n = np.asarray(field) / np.linalg.norm(field)
        assert np.allclose(rotation @ n, [0, 0, 1])
        assert np.allclose(rotation @ rotation.T, np.eye(3))
        assert np.linalg.det(rotation) == pytest.approx(1)
    assert np.allclose(rotation_to_field((0, 0, 0)), np.eye(3))


def test_a_trajectory_that_only_rattles_is_not_fitted():
    result = analyse_condition([vibrating(0)], 300, options=FAST, structure='toy')
    li = result.summary['species']['Li']
    assert li['diffusive'] is False
    assert 'too short or too cold' in li['reason']
    assert all(d['status'] == 'not_diffusive' and 'mean' not in d for d in li['D'].values())
    assert any('Li moved only' in w for w in result.summary['warnings'])
    summary = summarise_campaign([result.summary])
    assert summary['arrhenius'][0]['fit']['status'] == 'too_few_temperatures'


def test_replicas_of_different_systems_are_refused():
    other = brownian(1, n_mobile=30)
    with pytest.raises(TransportInputError, match='replicas must be the same system'):
        ReplicaSet.from_trajectories([brownian(0), other])
    shuffled = brownian(1)
    shuffled.numbers = shuffled.numbers[::-1].copy()
    with pytest.raises(TransportInputError, match='another atom order'):
        ReplicaSet.from_trajectories([brownian(0), shuffled])
    with pytest.raises(TransportInputError, match='different intervals'):
        ReplicaSet.from_trajectories([brownian(0), brownian(1, frame_fs=20.0)])
    with pytest.raises(TransportInputError, match='at least 10'):
        ReplicaSet.from_trajectories([brownian(0, frames=50)], equilibration_fs=450)


def test_replicas_of_different_length_are_trimmed_with_a_warning():
    replicas = ReplicaSet.from_trajectories([brownian(0, frames=300), brownian(1, frames=200)], equilibration_fs=100)
    assert replicas.n_frames == 190
    assert 'trimmed to 190' in replicas.warnings[0]


def test_options_are_validated():
    with pytest.raises(TransportInputError, match='fit_start_fraction'):
        AnalysisOptions.from_dict({'fit_start_fraction': 1.5})
    with pytest.raises(TransportInputError, match='unknown analysis option'):
        AnalysisOptions.from_dict({'start': 0.1})
    with pytest.raises(TransportInputError, match='no formal charge known for Xe'):
        AnalysisOptions().charge('Xe')
    assert AnalysisOptions(charges={'Li': 0.8}).charge('Li') == 0.8


def test_lag_grid_ends_at_max_lag_fraction_of_the_run():
    lags = lag_indices(1000, 60)
    assert lags[0] == 1 and lags[-1] == 999 and len(lags) == 60
    half = lag_indices(1000, 60, 0.5)
    assert half[0] == 1 and half[-1] == 500 and len(half) == 60
    with pytest.raises(TransportInputError, match='leaves 2 time interval'):
        lag_indices(20, 60, 0.1)


def documented_analysis_defaults() -> dict:
    """The ``| `option` | default | meaning |`` rows of the analysis-options table of docs/campaign.md."""
    text = DOCS.read_text(encoding='utf-8')
    section = text.split('### Analysis options', 1)[1].split('\n#', 1)[0]
    rows = re.findall(r'^\| `(\w+)` \| ([^|]+) \|', section, flags=re.MULTILINE)
    return {name: ast.literal_eval(default.strip()) for name, default in rows}


def test_documented_analysis_defaults_are_the_code_defaults():
    """Every AnalysisOptions field is in the docs' table, with the default the code uses."""
    assert documented_analysis_defaults() == dataclasses.asdict(AnalysisOptions())


def test_arrhenius_recovers_the_activation_energy():
    temperatures = np.array([500.0, 600.0, 700.0, 800.0])
    truth = 1e-3 * np.exp(-0.3 / (8.617333262e-5 * temperatures))
    rng = np.random.default_rng(3)
    measured = truth * (1 + 0.05 * rng.standard_normal(4))
    fit = arrhenius_fit(temperatures, measured, 0.05 * truth, seed=1)
    assert fit['status'] == 'ok'
    assert fit['activation_energy_eV'] == pytest.approx(0.3, abs=4 * fit['activation_energy_std_eV'])
    assert 0.001 < fit['activation_energy_std_eV'] < 0.05
    assert fit['prefactor_cm2_per_s'] == pytest.approx(1e-3, rel=0.6)
    assert arrhenius_fit([600.0], [1e-5], [1e-6])['status'] == 'too_few_temperatures'


def test_linear_response_detects_a_nonlinear_drift():
    fields = np.array([0.02, 0.05, 0.1])
    linear = linear_response(fields, 1e-3 * fields, np.full(3, 2e-6))
    assert linear['linear'] is True
    assert linear['mobility_cm2_per_Vs'] == pytest.approx(1e-4)
    nonlinear = linear_response(fields, 1e-3 * fields**2 / 0.02, np.full(3, 2e-6))
    assert nonlinear['linear'] is False
    assert linear_response(fields[:1], 1e-3 * fields[:1], [1e-6])['linear'] is None


DRIFT_PER_FIELD = 4e-3
"""Drift velocity (Å/fs) per V/Å of the campaign's full-Z* walkers: at the longest interval (5 ps) the drift
doubles the MSD along E at 0.05 V/Å, well above the 12 % noise of a 64-walker MSD there."""


@pytest.fixture(scope='module')
def campaign_conditions():
    conditions, curves = [], {}

    def add(runs, temperature, field=(0, 0, 0), mode='full'):
        result = analyse_condition(runs, temperature, field, mode, options=FAST, structure='toy')
        conditions.append(result.summary)
        curves[result.summary['key']] = result.curves

    for temperature, d in ((500, 0.4e-5), (600, 1e-5), (700, 2e-5)):
        add([brownian(temperature + k, d_cm2_s=(d, d, d)) for k in (0, 1)], temperature)
    for field in (0.05, 0.1):
        for mode, share in (('full', 1.0), ('diagonal', 0.5)):
            runs = [brownian(9 + k, drift_A_fs=(0, 0, DRIFT_PER_FIELD * field * share)) for k in (0, 1)]
            add(runs, 600, (0, 0, field), mode)
    return conditions, curves


def test_campaign_summary_report_and_plots(campaign_conditions, tmp_path):
    conditions, curves = campaign_conditions
    summary = summarise_campaign(conditions, failures=[{'key': 'toy_x_r0', 'message': 'fake'}])
    xyz = next(e for e in summary['arrhenius'] if e['direction'] == 'xyz')
    assert xyz['fit']['status'] == 'ok'
    # D ratios 0.4 : 1 : 2 over 500-700 K: Ea about 0.28 eV
    assert 0.15 < xyz['fit']['activation_energy_eV'] < 0.45
    enhancement = {(e['field_magnitude_V_per_A'], e['bec_mode']): e for e in summary['field_enhancement']}
    t = conditions[0]['max_lag_ps'] * 1000
    for field in (0.05, 0.1):
        # (2Dt + v²t²) / 2Dt: 2 and 5; measured 2.06 and 5.48 (the E = 0 control's MSD is 15 % low by chance)
        expected = 1 + (DRIFT_PER_FIELD * field) ** 2 * t / (2 * D_TRUE * A2_PER_FS)
        assert enhancement[(field, 'full')]['msd_along_ratio'] == pytest.approx(expected, rel=0.3)
    full = next(s for s in summary['drift_vs_field'] if s['bec_mode'] == 'full')
    assert full['linear'] is True
    assert full['mobility_cm2_per_Vs'] == pytest.approx(DRIFT_PER_FIELD * 0.1, rel=0.2)  # (Å/fs)/(V/Å) = 0.1 cm²/V s
    assert abs(full['control_velocity_A_per_fs']) < 4 * full['control_velocity_error_A_per_fs']
    (ablation, *_) = [a for a in summary['ablation'] if a['field_V_per_A'][2] == 0.1]
    assert ablation['mode'] == 'diagonal'
    assert ablation['drift_along_ratio_to_full'] == pytest.approx(0.5, abs=4 * ablation['drift_along_ratio_error'])
    assert any('toy_x_r0: MD failed (fake)' in w for w in summary['warnings'])

    paths = campaign_plots(summary, conditions, curves, tmp_path)
    assert {p.name for p in paths} == {'msd_toy_Li.png', 'arrhenius.png', 'drift_vs_field.png'}
    assert all(p.stat().st_size > 10_000 for p in paths)
    html = html_report(summary, conditions, {p.stem: p.read_bytes() for p in paths}, provenance={'campaign': '1'})
    for section in ('Arrhenius (E = 0)', 'Field enhancement', 'Drift and mobility', 'Off-diagonal ablation'):
        assert section in html
    assert html.count('data:image/png;base64,') == 3
    assert 'MD failed (fake)' in html


def test_no_zero_field_control_is_warned(campaign_conditions):
    conditions, _ = campaign_conditions
    with_field = [c for c in conditions if c['field_magnitude_V_per_A'] > 0]
    summary = summarise_campaign(with_field)
    assert any('has no E = 0 control' in w for w in summary['warnings'])
    assert summary['field_enhancement'] == []


def test_condition_keys_are_readable_and_distinct():
    assert condition_key('li3n', 600, (0, 0, 0.1), 'full') == 'li3n_T600_E0_0_0p1_full'
    assert condition_key('li3n', 600, (0, 0, -0.1), 'full') != condition_key('li3n', 600, (0, 0, 0.1), 'full')


def test_campaign_settings():
    settings = CampaignSettings.from_dict(
        {'temperatures_K': [500, 600], 'fields': [[0, 0, 0], [0, 0, 0.1]], 'bec_modes': ['full', 'diagonal']}
    )
    runs = settings.runs()
    assert len(runs) == 6  # E = 0 once per T, the field with both modes
    assert (500.0, [0.0, 0.0, 0.0], 'full') in runs
    md = settings.md_settings(500, [0, 0, 0.1], 'diagonal', 7)
    assert md['bec_mode'] == 'diagonal' and md['seed'] == 7 and md['steps'] == 20000
    for values, message in (
        ({'temperatures_K': [500, 500]}, 'duplicates'),
        ({'fields': [[0, 0, 1e8]]}, 'V/Å'),
        ({'bec_modes': ['diagonal']}, 'must include "full"'),
        ({'md_overrides': {'temperature_K': 3}}, 'set by the campaign'),
        ({'md_overrides': {'ensemble': 'nvt'}}, 'MD settings'),
        ({'steps': 100, 'equilibration_fs': 200}, 'leaves nothing'),
        ({'analysis': {'n_samples': 3}}, 'analysis'),
        ({'replica': 2}, 'unknown campaign setting'),
    ):
        with pytest.raises(CampaignInputError, match=message):
            CampaignSettings.from_dict(values)
    assert not CampaignSettings.from_dict({'fields': [[0, 0, 0.1]]}).has_zero_field


def test_einstein_mobility_is_taken_along_the_field_direction():
    """An anisotropic control (D_x = 4 D_z, as in-plane vs c in Li3N): a field along x is compared with q D_x / kT.

    Before, the control's own "along" axis (z at E = 0) was used whatever the field's direction.
    """
    from ionfield.models.transport.campaign import einstein_mobility_along

    def ok(mean):
        return {'status': 'ok', 'mean': mean}

    q_over_kt = 2.0
    d = {'x': ok(4e-5), 'y': ok(4e-5), 'z': ok(1e-5), 'along': ok(1e-5)}
    control = {'D': d, 'einstein_mobility_along': ok(q_over_kt * 1e-5)}
    assert einstein_mobility_along(control, (0.1, 0, 0)) == pytest.approx(q_over_kt * 4e-5)
    assert einstein_mobility_along(control, (0, 0, 1)) == pytest.approx(q_over_kt * 1e-5)
    assert einstein_mobility_along(control, (1, 0, 1)) == pytest.approx(q_over_kt * 2.5e-5)  # n = (1, 0, 1)/sqrt 2
    not_fitted = {**control, 'D': {**d, 'x': {'status': 'not_diffusive'}}}
    assert einstein_mobility_along(not_fitted, (1, 0, 0)) is None
