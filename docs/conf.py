"""Sphinx configuration of the aiida-ionfield documentation (Markdown pages through MyST)."""

from importlib.metadata import version as _version

project = 'aiida-ionfield'
author = 'aiida-ionfield developers'
copyright = '2026, aiida-ionfield developers'  # noqa: A001
release = _version('aiida-ionfield')

extensions = ['myst_parser']
myst_enable_extensions = ['colon_fence', 'dollarmath']
source_suffix = {'.md': 'markdown'}
exclude_patterns = ['_build']
html_theme = 'furo'
html_title = f'aiida-ionfield {release}'
