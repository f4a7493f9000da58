"""The plain-Python parts of active learning, without AiiDA: trust levels, selection, convergence, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from ionfield.models.active_learning.calibration import calibrate, frame_max_error, spearman
from ionfield.models.active_learning.convergence import (
    BUDGET_SPENT,
    CONTINUE,
    CONVERGED,
    MAX_ITERATIONS,
    NO_CANDIDATES,
    ConvergenceCriterion,
)
from ionfield.models.active_learning.descriptors import descriptor_matrix, radial_descriptor
from ionfield.models.active_learning.report import format_table, plot_history
from ionfield.models.active_learning.selection import FrameSelector, farthest_point_sampling
from ionfield.models.active_learning.settings import ActiveLearningInputError, ActiveLearningSettings
from ionfield.models.active_learning.trust import ACCURATE, CANDIDATE, FAILED, TrustLevels, TrustLevelsError
from ionfield.models.structures.reference import get_reference_structure
from ionfield.models.structures.sampling import rattle

TRUST = TrustLevels(0.05, 0.3, 0.1, 0.5)


# --- trust levels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('force', 'bec', 'expected'),
    [
        (0.01, 0.01, ACCURATE),
        (0.01, None, ACCURATE),
        (0.10, 0.01, CANDIDATE),  # forces between the levels
        (0.01, 0.20, CANDIDATE),  # Z* between the levels is enough
        (0.40, 0.01, FAILED),
        (0.01, 0.60, FAILED),  # Z* above the upper level fails the frame
        (float('nan'), 0.01, FAILED),
        (0.05, 0.01, CANDIDATE),  # the lower level itself is not accurate
        (0.30, 0.01, CANDIDATE),  # the upper level itself is not failed
    ],
)
def test_trust_levels_classify_every_region(force, bec, expected):
    assert TRUST.classify(force, bec) == expected


def test_trust_levels_without_bec_use_forces_only():
    trust = TrustLevels(0.05, 0.3)
    assert trust.classify(0.01, 9.0) == ACCURATE
    assert not trust.uses_bec


@pytest.mark.parametrize(
    ('levels', 'message'),
    [
        ((0.3, 0.05), 'wrong order'),
        ((0.1, 0.1), 'wrong order'),
        ((0.05, 0.3, 0.5, 0.1), 'bec trust levels are in the wrong order'),
        ((0.0, 0.3), 'positive'),
        ((0.05, 0.3, 0.1, None), 'both'),
    ],
)
def test_bad_trust_levels_are_refused(levels, message):
    with pytest.raises(TrustLevelsError, match=message):
        TrustLevels(*levels).validate()


def test_scaled_levels_keep_their_order():
    scaled = TRUST.scaled(0.5, 2.0)
    assert (scaled.force_lo, scaled.force_hi, scaled.bec_lo, scaled.bec_hi) == (0.025, 0.15, 0.2, 1.0)


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'force_trust': [0.3, 0.1]}, 'wrong order'),
        ({'bec_trust': [0.5, 0.1]}, 'wrong order'),
        ({'temperatures_K': []}, 'grid is empty'),
        ({'fields': []}, 'grid is empty'),
        ({'max_selected': 0}, 'budget of zero'),
        ({'max_labels': 0}, 'max_labels must be a positive integer'),
        ({'max_iterations': 0}, 'max_iterations must be a positive integer'),
        ({'fields': [[0, 0]]}, '3-vectors'),
        ({'md_overrides': {'temperature_K': 5}}, 'md_overrides may not set'),
        ({'bec_fraction': 1.5}, 'bec_fraction must be in'),
        ({'trust': 1}, 'unknown active-learning setting'),
    ],
)
def test_bad_settings_are_refused_with_the_reason(values, message):
    with pytest.raises(ActiveLearningInputError, match=message):
        ActiveLearningSettings.from_dict(values)


def test_settings_round_trip_and_grid():
    settings = ActiveLearningSettings.from_dict({'temperatures_K': [300, 600], 'fields': [[0, 0, 0], [0, 0, 0.1]]})
    assert ActiveLearningSettings.from_dict(settings.to_dict()) == settings
    assert settings.grid == [
        (300.0, (0.0, 0.0, 0.0)),
        (300.0, (0.0, 0.0, 0.1)),
        (600.0, (0.0, 0.0, 0.0)),
        (600.0, (0.0, 0.0, 0.1)),
    ]
    assert ActiveLearningSettings.from_dict({'bec_trust': None}).trust == TrustLevels(0.05, 0.25)


# --- descriptors and selection ------------------------------------------------------------------------


def test_descriptor_is_invariant_to_rotation_translation_and_order():
    atoms = rattle(get_reference_structure('alpha-Li3N').repeat((2, 2, 2)), 0.1, seed=1)[0]
    reference = radial_descriptor(atoms, ['Li', 'N'])
    moved = atoms.copy()
    moved.rotate(37, 'z', rotate_cell=True)
    moved.translate([0.3, -0.2, 1.1])
    moved = moved[np.random.default_rng(0).permutation(len(moved))]
    np.testing.assert_allclose(radial_descriptor(moved, ['Li', 'N']), reference, atol=1e-9)
    other = rattle(atoms, 0.2, seed=2)[0]
    assert np.linalg.norm(radial_descriptor(other, ['Li', 'N']) - reference) > 1e-3
    with pytest.raises(ValueError, match='not in the descriptor species'):
        radial_descriptor(atoms, ['Li'])


def test_farthest_point_sampling_spreads_picks_and_is_seeded():
    rng = np.random.default_rng(0)
    clusters = np.concatenate([rng.normal(centre, 0.01, size=(20, 2)) for centre in ([0, 0], [5, 0], [0, 5])])
    picks = farthest_point_sampling(clusters, 3, seed=1, first=0)
    assert sorted(k // 20 for k in picks) == [0, 1, 2]  # one pick per cluster, not three from one
    assert farthest_point_sampling(clusters, 5, seed=4) == farthest_point_sampling(clusters, 5, seed=4)
    assert farthest_point_sampling(clusters, 100, seed=0).__len__() == 60
    assert farthest_point_sampling(clusters, 0) == []
    # known data (reference) pushes picks away from it: the first pick is in the farthest cluster
    first = farthest_point_sampling(clusters, 1, reference=np.array([[0.0, 0.0], [5.0, 0.0]]))[0]
    assert first // 20 == 2


def test_selector_caps_picks_candidates_only_and_starts_from_the_largest_deviation():
    force = np.array([0.01, 0.10, 0.20, 0.12, 0.90, 0.15, 0.02, 0.11])
    descriptors = np.arange(len(force) * 2, dtype=float).reshape(-1, 2) ** 1.5
    selector = FrameSelector(TrustLevels(0.05, 0.3), cap=3, seed=0)
    selection = selector.select(force, descriptors)
    assert selection.classes == [ACCURATE, CANDIDATE, CANDIDATE, CANDIDATE, FAILED, CANDIDATE, ACCURATE, CANDIDATE]
    assert len(selection.selected) == 3
    assert selection.selected[0] == 2  # largest deviation among candidates
    assert all(selection.classes[k] == CANDIDATE for k in selection.selected)
    assert selection.counts == {ACCURATE: 2, CANDIDATE: 5, FAILED: 1}
    assert selection.accurate_fraction == pytest.approx(0.25)
    assert selection.to_dict()['failed'] == [4]
    assert selector.select(force, descriptors).selected == selection.selected  # reproducible
    assert FrameSelector(TrustLevels(0.05, 0.3), cap=0).select(force, descriptors).selected == []


def test_selector_refuses_mismatched_inputs():
    selector = FrameSelector(TrustLevels(0.05, 0.3), cap=2)
    with pytest.raises(ValueError, match='descriptors for'):
        selector.select([0.1, 0.1], np.zeros((3, 2)))
    with pytest.raises(ValueError):
        selector.select([0.1, 0.1], np.zeros((2, 2)), bec_deviation=[0.1])
    with pytest.raises(TrustLevelsError):
        FrameSelector(TrustLevels(0.3, 0.05), cap=2)


def test_selection_of_real_frames_prefers_diverse_structures():
    base = get_reference_structure('alpha-Li3N').repeat((2, 2, 1))
    near = rattle(base, 0.02, seed=3, count=6)  # six near-duplicates
    far = rattle(base, 0.25, seed=4, count=2)  # two distinct frames
    frames = near + far
    descriptors = descriptor_matrix(frames, ['Li', 'N'])
    force = [0.2] + [0.1] * 7  # the first near-duplicate has the largest deviation: picked first
    selection = FrameSelector(TrustLevels(0.05, 0.3), cap=3, seed=0).select(force, descriptors)
    assert selection.selected[0] == 0
    assert set(selection.selected[1:]) == {6, 7}


# --- convergence --------------------------------------------------------------------------------------


def test_convergence_needs_the_share_for_patience_iterations():
    criterion = ConvergenceCriterion(fraction=0.99, patience=2, max_iterations=6)
    assert criterion.decide([0.5], 10).reason == CONTINUE
    assert criterion.decide([0.5, 0.995], 10).reason == CONTINUE
    decision = criterion.decide([0.5, 0.995, 1.0], 10)
    assert decision.reason == CONVERGED and decision.stop
    assert criterion.decide([0.995, 0.5, 0.995], 10).reason == CONTINUE  # the streak was broken
    assert criterion.streak([0.995, 0.5, 0.995]) == 1


def test_other_stops_are_named():
    criterion = ConvergenceCriterion(fraction=0.99, patience=2, max_iterations=3, max_labels=20)
    assert criterion.decide([0.1, 0.2, 0.3], 5).reason == MAX_ITERATIONS
    assert 'not converged' in criterion.decide([0.1, 0.2, 0.3], 5).message
    assert criterion.decide([0.1], 20).reason == BUDGET_SPENT
    assert criterion.decide([0.1], 5, candidates=0).reason == NO_CANDIDATES
    assert criterion.remaining_labels(15) == 5
    assert ConvergenceCriterion().remaining_labels(10**6) is None


# --- calibration --------------------------------------------------------------------------------------


def test_frame_max_error_uses_the_worst_atom():
    reference = np.zeros((3, 3))
    predicted = np.array([[0.0, 0.0, 0.1], [0.3, 0.4, 0.0], [0.0, 0.0, 0.0]])
    assert frame_max_error(predicted, reference) == pytest.approx(0.5)
    assert frame_max_error(np.ones((2, 3, 3)), np.zeros((2, 3, 3))) == pytest.approx(3.0)


def test_calibration_measures_the_ratio_and_suggests_levels():
    deviation = np.array([0.05, 0.1, 0.2, 0.3, 0.15])
    error = 2.0 * deviation  # the committee under-states the error by 2
    result = calibrate(TrustLevels(0.05, 0.3, 0.1, 0.5), deviation, error, [0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    assert result.force.ratio == pytest.approx(2.0)
    assert result.force.rank_correlation == pytest.approx(1.0)
    assert result.force.error_rmse == pytest.approx(np.sqrt(np.mean(error**2)))
    assert result.suggested.force_lo == pytest.approx(0.025)  # levels halved: error 0.05 <=> deviation 0.025
    assert result.suggested.bec_lo == pytest.approx(0.1)  # ratio 1: unchanged
    wild = calibrate(TrustLevels(0.05, 0.3), deviation, 100 * deviation)
    assert wild.suggested.force_lo == pytest.approx(0.025)  # clipped at a factor of 2 per iteration
    few = calibrate(TrustLevels(0.05, 0.3), [0.1], [0.5])
    assert few.suggested.force_lo == 0.05 and few.force.n == 1
    assert calibrate(TrustLevels(0.05, 0.3), [None], [None]).force.n == 0
    assert spearman([1, 2], [2, 1]) is None


# --- report -------------------------------------------------------------------------------------------


def history():
    entries = []
    for iteration in (1, 2):
        entries.append(
            {
                'iteration': iteration,
                'dataset_frames': 5 + 3 * iteration,
                'dataset_bec_frames': 1 + iteration,
                'selection': {
                    'n_frames': 120,
                    'shares': {'accurate': 0.5 * iteration, 'candidate': 0.4, 'failed': 0.1},
                },
                'labels': {'done': 3},
                'calibration': {'force': {'error_rmse': 0.1 / iteration, 'ratio': 1.5}, 'bec': {'error_rmse': None}},
                'trust': {'force_lo': 0.05, 'force_hi': 0.25, 'bec_lo': None, 'bec_hi': None},
                'label_s': 60.0,
                'train_s': 30.0,
                'explore_s': 20.0,
                'select_s': 1.0,
            }
        )
    return [*entries, {'stop_reason': 'max_iterations', 'message': 'done'}]


def test_report_table_and_plot(tmp_path):
    table = format_table(history())
    lines = table.splitlines()
    assert len(lines) == 3 and 'accurate' in lines[0] and 'F err' in lines[0]
    assert lines[2].split()[:5] == ['2', '11', '3', '120', '1']
    path = plot_history(history(), tmp_path / 'al.png')
    assert path.read_bytes().startswith(b'\x89PNG')
    with pytest.raises(ValueError, match='no finished iteration'):
        plot_history([{'stop_reason': 'x'}], tmp_path / 'none.png')
