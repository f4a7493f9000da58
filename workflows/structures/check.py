"""``StructureCheckWorkChain`` (``ionfield.structure_check``): validate structures before any DFT or MD.

It is the smallest workchain of the package and the one `ionfield setup` and the test-suite submit
to a daemon to prove that a profile works end to end (storage, broker, daemon, provenance). The
same calcfunction is the input gate of the labelling and MD stages, so a bad structure is rejected
with a message naming it before any compute is spent.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, calcfunction

from ionfield.models.structures import checks as structure_checks
from ionfield.models.structures.checks import analyse_structure

__all__ = ('PROBLEM_EXIT_CODES', 'StructureCheckWorkChain', 'check_structure')

PROBLEM_EXIT_CODES = {
    structure_checks.EMPTY: 'ERROR_EMPTY_STRUCTURE',
    structure_checks.NOT_PERIODIC: 'ERROR_NOT_PERIODIC',
    structure_checks.DEGENERATE_CELL: 'ERROR_DEGENERATE_CELL',
    structure_checks.OVERLAPPING_ATOMS: 'ERROR_OVERLAPPING_ATOMS',
}
"""Kind of structure problem -> name of the exit code that reports it (the first problem decides)."""


@calcfunction
def check_structure(structure: orm.StructureData, min_distance: orm.Float) -> orm.Dict:
    """Return formula, density, shortest distance and the list of problems of ``structure``."""
    report = analyse_structure(structure.get_ase(), min_distance=min_distance.value)
    return orm.Dict(report.as_dict())


class StructureCheckWorkChain(WorkChain):
    """Check that a structure can be simulated as a bulk crystal and report its basic properties."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The structure to check.')
        spec.input(
            'min_distance',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            help='Two atoms closer than this (Å, minimum image) count as overlapping.',
        )
        spec.outline(cls.check, cls.results)
        spec.output('summary', valid_type=orm.Dict, help='Formula, natoms, volume, density, min_distance, problems.')
        spec.exit_code(
            301,
            'ERROR_OVERLAPPING_ATOMS',
            message='The structure has overlapping atoms: {detail}. Fix the geometry or raise `min_distance`.',
        )
        spec.exit_code(
            302,
            'ERROR_NOT_PERIODIC',
            message='The structure is not a 3D-periodic crystal: {detail}. Set pbc=(True, True, True) and a cell.',
        )
        spec.exit_code(303, 'ERROR_EMPTY_STRUCTURE', message='The structure has no atoms: {detail}.')
        spec.exit_code(
            304, 'ERROR_DEGENERATE_CELL', message='The cell is degenerate: {detail}. Give three independent vectors.'
        )

    def check(self):
        self.ctx.summary = check_structure(self.inputs.structure, self.inputs.min_distance)

    def results(self):
        summary = self.ctx.summary
        self.out('summary', summary)  # the record is kept even when the structure is rejected
        for problem in summary['problems']:
            self.report(f'structure<{self.inputs.structure.pk}>: {problem}')
        if summary['problem_kinds']:  # the first problem decides the exit code; all are reported above
            exit_code = self.exit_codes[PROBLEM_EXIT_CODES[summary['problem_kinds'][0]]]
            return exit_code.format(detail=summary['problems'][0])
        self.report(
            f'{summary["formula"]}: {summary["natoms"]} atoms, {summary["density"]:.3f} g/cm^3, '
            f'shortest distance {summary["min_distance"]:.3f} Å'
        )
        return None
