"""The ``ionfield`` command line (click, in the style of ``verdi``): thin, it builds inputs and calls the library."""

from . import (  # noqa: F401  (register the subcommands)
    cmd_al,
    cmd_campaign,
    cmd_check,
    cmd_dataset,
    cmd_doctor,
    cmd_label,
    cmd_md,
    cmd_provenance,
    cmd_quickstart,
    cmd_run,
    cmd_setup,
    cmd_train,
    cmd_validate,
)
from .root import cli

__all__ = ('cli',)
