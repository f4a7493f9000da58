"""Transport analysis on synthetic trajectories whose D, anisotropy and drift are known."""

from __future__ import annotations

import numpy as np
import pytest

from ionfield.models.transport.arrhenius import arrhenius_fit
from ionfield.models.transport.campaign import summarise_campaign
from ionfield.models.transport.condition import analyse_condition, condition_key
from ionfield.models.transport.diffusion import conductivity_factor, lag_indices
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

from .transport_synthetic import brownian, vibrating

FAST = AnalysisOptions(n_samples=200, n_intervals=40)


def within(estimate: dict, truth: float, sigmas: float = 4.0, relative: float = 0.35) -> bool:
    """The truth is inside the error bar (with a floor for the few-sample posteriors of a unit test)."""
    return abs(estimate['mean'] - truth) <= max(sigmas * estimate['std'], relative * truth)


@pytest.fixture(scope='module')
def isotropic():
    return analyse_condition([brownian(0), brownian(1)], 600, options=FAST, structure='toy')


def test_tracer_diffusion_is_recovered_with_its_error(isotropic):
    d = isotropic.summary['species']['Li']['D']
    assert within(d['xyz'], 1e-5)
    assert d['xyz']['std'] < 0.3e-5
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


def test_collective_diffusion_and_haven_ratio_of_independent_ions(isotropic):
    li = isotropic.summary['species']['Li']
    # uncorrelated ions: D_J = D*, H = 1 (wide, one centre of mass per replica)
    assert li['D_collective']['status'] == 'ok'
    assert 0.2 < li['haven_ratio']['median'] < 5
    ne = li['conductivity_nernst_einstein']
    factor = conductivity_factor(32, 12.0**3, 1.0, 600)
    assert ne['mean'] == pytest.approx(factor * li['D']['xyz']['mean'], rel=1e-9)


def test_anisotropy_and_along_across_the_field():
    runs = [brownian(seed, d_cm2_s=(2e-5, 2e-5, 0.4e-5)) for seed in (0, 1)]
    result = analyse_condition(runs, 600, options=FAST, structure='toy')
    d = result.summary['species']['Li']['D']
    assert within(d['x'], 2e-5) and within(d['z'], 0.4e-5)
    assert d['x']['mean'] / d['z']['mean'] > 2.5
    summary = summarise_campaign([result.summary])
    (entry,) = summary['anisotropy']
    assert entry['xy_over_z'] > 2.5
    # a field along x: "along" is x, "across" is y and z
    field_run = analyse_condition(runs, 600, field=(0.05, 0, 0), options=FAST, structure='toy')
    d = field_run.summary['species']['Li']['D']
    assert within(d['along'], 2e-5)
    assert within(d['across'], 1.2e-5)


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


def test_lag_grid_ends_at_the_full_run():
    lags = lag_indices(1000, 60)
    assert lags[0] == 1 and lags[-1] == 999 and len(lags) == 60


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
            runs = [brownian(9 + k, drift_A_fs=(0, 0, 2e-3 * field * share)) for k in (0, 1)]
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
    assert enhancement[(0.1, 'full')]['msd_along_ratio'] > enhancement[(0.05, 'full')]['msd_along_ratio'] > 1.2
    full = next(s for s in summary['drift_vs_field'] if s['bec_mode'] == 'full')
    assert full['linear'] is True
    assert full['mobility_cm2_per_Vs'] == pytest.approx(2e-3 * 0.1, rel=0.2)
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
