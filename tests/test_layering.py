"""The layering rule of docs/architecture.md, kept by reading every import (top-level and inside functions).

``models`` imports neither ``plugins`` nor ``workflows`` nor AiiDA (it runs in a notebook or on a compute
node); ``plugins`` outside ``plugins/cli`` and ``plugins/setup`` (data types, CalcJobs, parsers) imports
``models`` but not ``workflows``; ``workflows`` imports ``models`` and ``plugins`` but not the CLI; the CLI
and set-up may import everything.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from .conftest import REPO

#: folder (relative to the repository) -> module prefixes it must not import.
FORBIDDEN = {
    'models': ('ionfield.plugins', 'ionfield.workflows', 'aiida'),
    'plugins/calculations': ('ionfield.workflows', 'ionfield.plugins.cli'),
    'plugins/parsers': ('ionfield.workflows', 'ionfield.plugins.cli'),
    'plugins/data': ('ionfield.workflows', 'ionfield.plugins.cli'),
    'workflows': ('ionfield.plugins.cli', 'ionfield.plugins.setup'),
}


def imported_modules(path: pathlib.Path, root: pathlib.Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``; relative imports are resolved against its package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ['ionfield', *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            found.append((node.lineno, module))
    return found


def violations(folder: str, forbidden: tuple[str, ...], root: pathlib.Path = REPO) -> list[str]:
    problems = []
    for path in sorted((root / folder).rglob('*.py')):
        for line, module in imported_modules(path, root):
            if any(module == prefix or module.startswith(prefix + '.') for prefix in forbidden):
                problems.append(f'{path.relative_to(root)}:{line} imports {module}')
    return problems


@pytest.mark.parametrize('folder', list(FORBIDDEN))
def test_layers_import_only_downwards(folder):
    assert violations(folder, FORBIDDEN[folder]) == []


def test_the_checker_sees_a_violation(tmp_path):
    """The rule can fail: a models module that imports aiida inside a function, or workflows relatively, is caught."""
    (tmp_path / 'models' / 'md').mkdir(parents=True)
    (tmp_path / 'models' / 'md' / 'probe.py').write_text(
        'import numpy\ndef f():\n    from aiida import orm\n    from ...workflows import x\n    from . import field\n'
    )
    assert violations('models', FORBIDDEN['models'], tmp_path) == [
        'models/md/probe.py:3 imports aiida',
        'models/md/probe.py:4 imports ionfield.workflows',
    ]
