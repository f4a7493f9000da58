"""``ionfield validate`` refuses what cannot be validated before anything is submitted."""

from __future__ import annotations

import pytest

from ..fakes import dummy_model
from .test_cli_train import invoke, n_processes


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('--set', 'lattice=[0.02, 0.01]'), 'lattice thresholds are out of order'),
        (('--set', 'strain=0.2'), 'strain'),
        (('--set', 'phonons=[-1, 1]'), 'phonons'),
        (('--set', 'no_such=1'), 'unknown validation setting'),
        (('--protocol', 'quick'), 'quick'),
    ],
)
def test_bad_settings_are_refused_before_submitting(aiida_profile, args, message):
    model = dummy_model()
    before = n_processes()
    result = invoke('validate', model.pk, 'alpha-Li3N', *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert n_processes() == before
