"""Caching on a real laptop profile: identical DFT labels are reused, not recomputed.

``ionfield setup`` enables AiiDA caching for pw.x and ph.x, so labelling the same structure with the
same inputs twice runs QE once: the second workchain's calculations are clones of the first's.
"""

from __future__ import annotations

import pytest

from .conftest import ionfield, profile_python

pytestmark = pytest.mark.slow

CALCULATIONS = """
node = orm.load_node({pk})
jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
print(json.dumps([[n.process_label, n.base.caching.is_created_from_cache, n.base.caching.get_cache_source()]
                  for n in sorted(jobs, key=lambda n: n.ctime)]))
"""


def _label(name: str, env) -> int:
    command = ['label', 'alpha-Li3N', '-p', name, '--rattle', '1', '--seed', '11', '--no-bec', '--wait', '900']
    result = ionfield(*command, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return int(result.stdout.split('LabelWorkChain<')[1].split('>')[0])


def test_identical_labels_are_not_recomputed(laptop_profile):
    name, env, _ = laptop_profile
    first = profile_python(name, env, CALCULATIONS.format(pk=_label(name, env)))
    second = profile_python(name, env, CALCULATIONS.format(pk=_label(name, env)))
    assert [label for label, *_ in first] == [label for label, *_ in second]
    assert {label for label, *_ in first} == {'PwCalculation'}  # E/F/S only: DFPT is cached the same way
    assert not any(cached for _, cached, _ in first)
    assert all(cached for _, cached, _ in second), second
    # each clone names the calculation it was copied from
    sources = {source for _, _, source in second}
    assert len(sources) == len(second)
