"""The validation gate as plain classes (DP-GEN2 style): one row per quantity, a table that passes or fails.

Each row holds the DFT and model values (where one number stands for the quantity), the error that is
judged, and the ``[warn, fail]`` thresholds of :class:`~ionfield.models.validation.settings.ValidationSettings`.
:func:`status` is the one rule: ``pass`` at or below ``warn``, ``warn`` above it up to and including
``fail``, ``fail`` above ``fail`` or when the error is not a number (a quantity that could not be
checked has not passed). A table passes when no row fails; warnings are reported, not gated.

Relative errors (lattice parameters, moduli) are ``|model - dft| / |dft|``; phonon, Born-charge and
force errors are absolute (THz, e, eV/Å), so a row says which kind it holds in ``relative``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .properties import ElasticConstants, born_charge_rmse, lattice_parameters

STATUSES = ('pass', 'warn', 'fail')
#: Modes dropped as acoustic before the phonon RMS: the three translations, zero at Gamma.
N_ACOUSTIC = 3


def status(error: float, thresholds: Sequence[float]) -> str:
    """``'pass'`` (error <= warn), ``'warn'`` (warn < error <= fail) or ``'fail'`` (above fail, or NaN)."""
    warn, fail = (float(x) for x in thresholds)
    if not (0 < warn <= fail):
        raise ValueError(f'thresholds must be [warn, fail] with 0 < warn <= fail, got {list(thresholds)!r}')
    if not math.isfinite(error) or error > fail:
        return 'fail'
    return 'warn' if error > warn else 'pass'


def relative_error(dft: float, model: float) -> float:
    """``|model - dft| / |dft|`` (NaN where DFT is zero: a relative error of a zero reference means nothing)."""
    return abs(model - dft) / abs(dft) if dft != 0 else math.nan


@dataclasses.dataclass
class ValidationRow:
    """One compared quantity: the values, the judged error, its thresholds and the verdict."""

    quantity: str
    unit: str
    """Unit of ``dft`` and ``model``; ``error`` is in it too unless ``relative``."""
    dft: float | None
    model: float | None
    error: float
    warn: float
    fail: float
    status: str
    relative: bool = False

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f'status must be one of {", ".join(STATUSES)}, got {self.status!r}')

    @classmethod
    def judged(
        cls,
        quantity: str,
        unit: str,
        dft: float | None,
        model: float | None,
        error: float,
        thresholds: Sequence[float],
        relative: bool = False,
    ) -> ValidationRow:
        """A row whose status :func:`status` gives from ``error`` and ``thresholds`` (``[warn, fail]``)."""
        warn, fail = (float(x) for x in thresholds)
        return cls(
            quantity=quantity,
            unit=unit,
            dft=None if dft is None else float(dft),
            model=None if model is None else float(model),
            error=float(error),
            warn=warn,
            fail=fail,
            status=status(float(error), thresholds),
            relative=relative,
        )

    def to_dict(self) -> dict:
        """JSON-able values; a NaN error becomes ``None``."""
        values = dataclasses.asdict(self)
        return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in values.items()}

    @classmethod
    def from_dict(cls, values: Mapping) -> ValidationRow:
        values = dict(values)
        values['error'] = math.nan if values.get('error') is None else values['error']
        return cls(**values)


@dataclasses.dataclass
class ValidationTable:
    """The rows of one validation; it has :attr:`passed` when no row failed."""

    rows: list[ValidationRow] = dataclasses.field(default_factory=list)

    def __add__(self, other: ValidationTable) -> ValidationTable:
        return ValidationTable(rows=[*self.rows, *other.rows])

    @property
    def passed(self) -> bool:
        return all(row.status != 'fail' for row in self.rows)

    def failures(self) -> list[str]:
        """The quantities that failed, in row order."""
        return [row.quantity for row in self.rows if row.status == 'fail']

    def warnings(self) -> list[str]:
        """The quantities that warned, in row order."""
        return [row.quantity for row in self.rows if row.status == 'warn']

    def to_dict(self) -> dict:
        return {'passed': self.passed, 'failures': self.failures(), 'rows': [row.to_dict() for row in self.rows]}

    @classmethod
    def from_dict(cls, values: Mapping) -> ValidationTable:
        return cls(rows=[ValidationRow.from_dict(row) for row in values['rows']])

    def markdown(self) -> str:
        """A Markdown table, one line per row, with the verdict below it."""
        lines = [
            '| quantity | unit | DFT | model | error | warn | fail | status |',
            '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
        ]
        for row in self.rows:
            if row.relative:
                error, warn, fail = (f'{100 * x:.2f} %' for x in (row.error, row.warn, row.fail))
            else:
                error, warn, fail = (f'{x:.4g}' for x in (row.error, row.warn, row.fail))
            dft, model = ('—' if x is None else f'{x:.4g}' for x in (row.dft, row.model))
            lines.append(
                f'| {row.quantity} | {row.unit} | {dft} | {model} | {error} | {warn} | {fail} | {row.status} |'
            )
        verdict = 'passed' if self.passed else f'failed: {", ".join(self.failures())}'
        warned = self.warnings()
        lines += ['', f'**{verdict}**' + (f' (warnings: {", ".join(warned)})' if warned else '')]
        return '\n'.join(lines)


def compare_lattice(dft_cell, model_cell, thresholds: Sequence[float]) -> ValidationTable:
    """Rows ``a``, ``b``, ``c`` (Å): the relative errors of the model's zero-stress lattice parameters."""
    dft, model = lattice_parameters(dft_cell), lattice_parameters(model_cell)
    return ValidationTable(
        rows=[
            ValidationRow.judged(name, 'Å', dft[name], model[name], relative_error(dft[name], model[name]),
                                 thresholds, relative=True)
            for name in ('a', 'b', 'c')
        ]
    )  # fmt: skip


def compare_elastic(dft: ElasticConstants, model: ElasticConstants, thresholds: Sequence[float]) -> ValidationTable:
    """Rows for the Voigt-Reuss-Hill bulk and shear moduli (GPa), relative errors."""
    rows = []
    for quantity, name in (('bulk modulus', 'bulk_modulus'), ('shear modulus', 'shear_modulus')):
        reference, value = getattr(dft, name), getattr(model, name)
        rows.append(
            ValidationRow.judged(quantity, 'GPa', reference, value, relative_error(reference, value), thresholds, True)
        )
    return ValidationTable(rows=rows)


def optical(frequencies) -> np.ndarray:
    """The Gamma frequencies (THz) without the :data:`N_ACOUSTIC` smallest in magnitude, sorted ascending."""
    frequencies = np.asarray(frequencies, dtype=float).ravel()
    acoustic = np.argsort(np.abs(frequencies))[:N_ACOUSTIC]
    return np.sort(np.delete(frequencies, acoustic))


def compare_phonons(dft_thz, model_thz, thresholds: Sequence[float]) -> ValidationTable:
    """One row: the RMS difference (THz) of the sorted Gamma optical frequencies; the values are the highest mode.

    The three frequencies closest to zero are dropped as acoustic on each side (at Gamma they are
    translations, zero up to the finite-difference noise, and their noise says nothing about the model).
    Sorting pairs modes by order, not by eigenvector: a model that swaps two modes is not penalised for it.
    """
    dft, model = optical(dft_thz), optical(model_thz)
    if dft.shape != model.shape:
        raise ValueError(f'DFT and model have different numbers of Gamma modes: {dft.size + 3} and {model.size + 3}')
    if dft.size == 0:
        raise ValueError(
            'there are no optical modes to compare: a cell of one atom has only the 3 acoustic ones at Gamma '
            '(validate a cell of several atoms, e.g. the conventional cell)'
        )
    error = float(np.sqrt(np.mean((model - dft) ** 2)))
    return ValidationTable(
        rows=[ValidationRow.judged('Gamma optical frequencies (RMS)', 'THz', dft.max(), model.max(), error, thresholds)]
    )


def compare_born_charges(dft, model, thresholds: Sequence[float]) -> ValidationTable:
    """One row: the Born-charge RMSE (e) over every tensor element, each side sum-rule corrected.

    ``dft`` and ``model`` are ``(N, 3, 3)`` or ``(frames, N, 3, 3)``. No DFT or model value is shown: no
    one number stands for a set of tensors, and the error is what is judged.
    """
    error = born_charge_rmse(model, dft)
    return ValidationTable(rows=[ValidationRow.judged('Born charges (RMSE)', 'e', None, None, error, thresholds)])


def compare_forces(rmse_value: float, thresholds: Sequence[float]) -> ValidationTable:
    """One row: the force RMSE (eV/Å) on frames sampled for validation (:func:`.properties.force_rmse`)."""
    return ValidationTable(rows=[ValidationRow.judged('forces (RMSE)', 'eV/Å', None, None, rmse_value, thresholds)])
