"""The ``ionfield`` command line (click, in the style of ``verdi``): thin, it builds inputs and calls the library."""

from . import cmd_check, cmd_dataset, cmd_doctor, cmd_label, cmd_quickstart, cmd_setup, cmd_train  # noqa: F401,E402  (register the subcommands)
from .root import cli

__all__ = ('cli',)
