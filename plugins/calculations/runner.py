"""The base of the CalcJobs that run one of our console scripts (``ionfield-train``, ``ionfield-md``).

Both are one serial process driven by files in the job folder: settings and inputs in, ``result.json``
and outputs back. What they share lives here once: one process on one machine without MPI (the scripts
use torch threads, one by default), the parser, and the ``CodeInfo``/``CalcInfo`` of a single command.
"""

from __future__ import annotations

from typing import ClassVar

from aiida.common import datastructures
from aiida.engine import CalcJob


class RunnerCalculation(CalcJob):
    """One run of a console script of ``ionfield.models``; subclasses name the parser and the stdout file."""

    #: Entry point of the parser of the subclass.
    PARSER: ClassVar[str]
    #: Where the script's stdout goes in the job folder (retrieved).
    STDOUT_FILE: ClassVar[str]
    #: What is retrieved besides the stdout file: aiida-core ``retrieve_list`` entries. A plain name is retrieved
    #: under its base name; a ``(path, '.', depth)`` triple keeps the last ``depth`` parts of ``path``.
    RETRIEVE: ClassVar[tuple]

    @classmethod
    def retrieve_list(cls) -> list:
        """The ``retrieve_list`` of every job (aiida-core adds the scheduler's stdout and stderr)."""
        return [*cls.RETRIEVE, cls.STDOUT_FILE]

    @classmethod
    def define(cls, spec):
        super().define(spec)
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['parser_name'].default = cls.PARSER
        options['withmpi'].default = False

    def runner_calcinfo(self, cmdline: list[str], remote_copy: list | None = None) -> datastructures.CalcInfo:
        """The ``CalcInfo`` of one command line of the code, retrieving :meth:`retrieve_list`."""
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = cmdline
        codeinfo.stdout_name = self.STDOUT_FILE

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.remote_copy_list = list(remote_copy or [])
        calcinfo.retrieve_list = self.retrieve_list()
        return calcinfo
