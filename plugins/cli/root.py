"""The root ``ionfield`` group."""

from importlib.metadata import version

import click


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(version('aiida-ionfield'), prog_name='aiida-ionfield')
def cli():
    """aiida-ionfield: ion transport under electric fields, from DFT labels to field MD, with provenance."""
