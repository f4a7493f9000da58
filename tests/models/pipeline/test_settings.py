"""The pipeline's coverage rule (a campaign inside the explored grid) and the published-value comparison."""

from __future__ import annotations

import pytest

from ionfield.models.pipeline.references import comparison_rows, measured_activation, published_values
from ionfield.models.pipeline.report import pipeline_html
from ionfield.models.pipeline.settings import PipelineInputError, PipelineSettings, coverage_problems, exploration_grid

CAMPAIGN = {'temperatures_K': [650.0, 500.0, 800.0], 'fields': [[0.1, 0.0, 0.0]]}


def test_the_exploration_grid_covers_the_campaign_and_adds_the_zero_field():
    grid = exploration_grid(CAMPAIGN)
    assert grid == {'temperatures_K': [500.0, 650.0, 800.0], 'fields': [[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]}
    assert coverage_problems(grid, CAMPAIGN) == []


@pytest.mark.parametrize(
    ('campaign', 'message'),
    [
        ({'temperatures_K': [900.0], 'fields': [[0, 0, 0]]}, 'above the highest explored, 800 K'),
        ({'temperatures_K': [500.0], 'fields': [[0.2, 0, 0]]}, 'at most 0.1 V/Å'),
        ({'temperatures_K': [500.0], 'fields': [[0, 0.1, 0]]}, 'no field along that direction'),
        ({'temperatures_K': [500.0], 'fields': [[-0.1, 0, 0]]}, 'no field along that direction'),
    ],
)
def test_a_campaign_outside_the_explored_grid_is_named(campaign, message):
    problems = coverage_problems(exploration_grid(CAMPAIGN), campaign)
    assert len(problems) == 1 and message in problems[0]


def test_a_weaker_field_and_a_cooler_temperature_are_inside():
    assert coverage_problems(exploration_grid(CAMPAIGN), {'temperatures_K': [300.0], 'fields': [[0.05, 0, 0]]}) == []


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'supercell': [3, 3]}, 'supercell must be three positive integers'),
        ({'defect': {'mode': 'neutral'}}, 'unknown defect mode'),
        ({'defect': {'mode': 'charged', 'species': 'Li'}}, 'the species is mobile_species'),
        ({'oxidation_states': 'Li+'}, 'oxidation_states'),
    ],
)
def test_bad_settings_are_refused(values, message):
    with pytest.raises(PipelineInputError, match=message):
        PipelineSettings.from_dict(values)


def _fit(ea, std=0.02):
    return {'status': 'ok', 'activation_energy_eV': ea, 'activation_energy_std_eV': std}


ARRHENIUS = [
    {'structure': 'li3n', 'species': 'Li', 'direction': axis, 'fit': _fit(ea)}
    for axis, ea in (('x', 0.2), ('y', 0.4), ('z', 0.5))
]


def test_in_plane_is_the_mean_of_x_and_y_with_their_errors_combined():
    measured = measured_activation(ARRHENIUS, 'li3n', 'Li', 'in_plane')
    assert measured['value'] == pytest.approx(0.3)
    assert measured['std'] == pytest.approx((2 * 0.02**2) ** 0.5 / 2)
    assert measured_activation(ARRHENIUS, 'li3n', 'Li', 'z')['value'] == 0.5
    assert measured_activation(ARRHENIUS, 'other', 'Li', 'z') is None


def test_every_published_value_has_a_source_and_the_li3n_ones_are_compared():
    for entries in published_values().values():
        for entry in entries:
            assert entry['source'] and entry['unit'] and entry['direction']
    rows = comparison_rows('alpha-Li3N', {'arrhenius': ARRHENIUS}, 'li3n')
    activation = [row for row in rows if row['quantity'] == 'activation_energy']
    assert {row['direction']: row['ours']['value'] for row in activation} == pytest.approx({'in_plane': 0.3, 'z': 0.5})
    assert comparison_rows('beta-Li3PO4', {'arrhenius': ARRHENIUS}, 'li3n') == []


def test_the_report_says_which_stages_were_not_reached():
    page = pipeline_html('t', [{'stage': 'check', 'status': 'failed', 'message': 'overlap'}])
    assert page.count('Not reached') == 3 and 'overlap' in page
    failed = {'stage': 'campaign', 'status': 'failed', 'process': 'TransportCampaignWorkChain<7>', 'message': 'x < y'}
    page = pipeline_html('t', [{'stage': 'check', 'status': 'finished'}, failed])
    assert page.count('Not reached') == 2 and 'The stage failed (TransportCampaignWorkChain&lt;7&gt;): x &lt; y' in page
