"""``ionfield al`` in-process (CliRunner): bad settings are usage errors and nothing is submitted.

The campaign itself runs in ``tests/workflows/active_learning/test_workchain.py`` (mocked steps) and,
for real, in the quickstart test of ``test_setup_laptop``.
"""

from __future__ import annotations

import pytest
from aiida import orm

from .test_cli_train import invoke, n_processes


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('--force-trust', '0.4', '0.1'), 'wrong order'),
        (('--bec-trust', '0.5', '0.1'), 'bec trust levels are in the wrong order'),
        (('--max-selected', '0'), 'budget of zero'),
        (('--max-labels', '0'), 'max_labels must be a positive integer'),
        (('--set', 'temperatures_K=[]'), 'exploration grid is empty'),
        (('--set', 'no_such=1'), 'unknown active-learning setting'),
        (('--train-set', 'size=huge'), 'size'),
    ],
)
def test_al_run_refuses_bad_settings_before_submitting(aiida_profile, args, message):
    before = n_processes()
    result = invoke('al', 'run', 'alpha-Li3N', *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert n_processes() == before


def test_al_report_and_restart_need_an_active_learning_run(aiida_profile):
    node = orm.Int(3).store()
    for command in (('al', 'report', str(node.pk)), ('al', 'restart', str(node.pk))):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert 'is not an ActiveLearningWorkChain' in result.output
    result = invoke('al', 'report', '999999999')
    assert result.exit_code == 2 and 'no node' in result.output
