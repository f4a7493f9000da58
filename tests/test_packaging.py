"""The distribution installs the user's layout as one namespace and registers prefixed entry points."""

from __future__ import annotations

import subprocess
import tomllib
from importlib.metadata import distribution

import pytest

from .conftest import REPO, VERDI

TOP_LEVEL = {'workflows': 'ionfield.workflows', 'plugins': 'ionfield.plugins', 'models': 'ionfield.models'}


def test_every_package_folder_is_installed():
    """A new sub-folder with an ``__init__.py`` that is missing from pyproject would silently not install."""
    config = tomllib.loads((REPO / 'pyproject.toml').read_text())['tool']['setuptools']
    assert config['package-dir'] == {value: key for key, value in TOP_LEVEL.items()}
    on_disk = set()
    for folder, package in TOP_LEVEL.items():
        for init in (REPO / folder).rglob('__init__.py'):
            relative = init.parent.relative_to(REPO / folder)
            on_disk.add('.'.join([package, *relative.parts]))
    assert on_disk == set(config['packages'])


def test_subpackages_import_from_the_namespace():
    import ionfield.models
    import ionfield.plugins
    import ionfield.workflows

    for module, folder in (
        (ionfield.workflows, 'workflows'),
        (ionfield.plugins, 'plugins'),
        (ionfield.models, 'models'),
    ):
        assert (REPO / folder / '__init__.py').samefile(module.__file__), 'not the editable checkout'


def test_entry_points_are_prefixed_and_load():
    from aiida.plugins import WorkflowFactory

    entry_points = [ep for ep in distribution('aiida-ionfield').entry_points if ep.group.startswith('aiida.')]
    assert entry_points, 'no AiiDA entry points registered'
    for entry_point in entry_points:
        assert entry_point.name.startswith('ionfield.'), entry_point
        assert entry_point.load() is not None
    assert WorkflowFactory('ionfield.structure_check').__name__ == 'StructureCheckWorkChain'


@pytest.mark.slow
def test_verdi_plugin_list_shows_our_workflows():
    result = subprocess.run([VERDI, 'plugin', 'list', 'aiida.workflows'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'ionfield.structure_check' in result.stdout
