"""Exit codes: by stage range, referred to by name in code, and the docs' table generated from the specs."""

from __future__ import annotations

import re

import pytest
from aiida.engine import BaseRestartWorkChain

from ionfield.plugins.exit_codes import exit_code_table, our_processes, statuses

from ..conftest import REPO

#: entry-point name -> the stage range its own exit codes must lie in (DESIGN.md).
RANGES = {
    'ionfield.structure_check': range(300, 310),
    'ionfield.label': range(310, 400),
    'ionfield.label.qe': range(310, 400),
    'ionfield.label.vasp': range(310, 400),
    'ionfield.train': range(400, 500),
    'ionfield.train.base': range(400, 500),
    'ionfield.committee': range(400, 500),
    'ionfield.md': range(500, 600),
    'ionfield.md.base': range(500, 600),
    'ionfield.active_learning': range(600, 700),
    'ionfield.campaign': range(700, 800),
    'ionfield.validation': range(800, 900),
    'ionfield.pipeline': range(900, 1000),
}


def test_every_process_has_a_stage_range_and_keeps_to_it():
    inherited = {code.status for code in BaseRestartWorkChain.exit_codes.values()}
    processes = dict(our_processes())
    assert set(processes) == set(RANGES), 'a new process needs a stage range here and in DESIGN.md'
    for name, process_class in processes.items():
        for label, code in process_class.exit_codes.items():
            if code.status < 300 or (code.status in inherited and label in BaseRestartWorkChain.exit_codes):
                continue
            assert code.status in RANGES[name], f'{name} {label} [{code.status}] is outside its stage range'


def test_docs_table_is_generated_from_the_specs():
    page = (REPO / 'docs' / 'exit_codes.md').read_text()
    assert page == exit_code_table(), 'regenerate: python -m ionfield.plugins.exit_codes > docs/exit_codes.md'


def test_statuses_refuse_an_unknown_name():
    processes = dict(our_processes())
    assert statuses(processes['ionfield.md'], 'STOPPED_NAN', 'STOPPED_UNCERTAINTY') == {513, 510}
    with pytest.raises(KeyError):
        statuses(processes['ionfield.md'], 'STOPPED_BY_MAGIC')


def test_no_exit_status_is_compared_with_a_number():
    """``node.exit_status == 330`` silently breaks when a code is renumbered; names do not."""
    pattern = re.compile(r'exit_status\s*(==|!=|in|not in)\s*[\(\[{]?\s*\d')
    found = []
    for folder in ('models', 'plugins', 'workflows'):
        for path in (REPO / folder).rglob('*.py'):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f'{path.relative_to(REPO)}:{number}: {line.strip()}')
    assert found == []
