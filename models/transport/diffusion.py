"""Mean squared displacements and diffusion coefficients with uncertainties (kinisi).

kinisi (Bayesian regression over the MSD with its full covariance matrix, McCluskey et al.,
J. Chem. Theory Comput. 2024) gives posterior samples of D; we keep their mean, standard
deviation and 95 % interval. Our trajectories are already unwrapped, so displacements go to
kinisi's analysers directly (``KinisiDisplacements``) instead of through a file parser.

Before anything is fitted the MSD must look diffusive: at the longest interval the ions must have
moved more than ``min_msd_A2`` (a vibrating solid stays at a few tenths of Å²) and the log-log
slope in the fit window must be at least ``min_loglog_slope`` (1 is diffusive, 0 is caged). If
not, the estimate says so and carries no number: a slope fitted to rattling is garbage.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .replicas import AnalysisOptions, TransportInputError

if TYPE_CHECKING:
    import scipp as sc

OK = 'ok'
NOT_DIFFUSIVE = 'not_diffusive'
MIN_LAGS = 3
"""Fewest time intervals: a slope and an intercept need three MSD points (``fit_start`` keeps three to fit)."""


@dataclasses.dataclass
class Estimate:
    """A posterior summary, or why there is none."""

    status: str
    unit: str
    mean: float | None = None
    median: float | None = None
    std: float | None = None
    ci95: tuple[float, float] | None = None
    reason: str = ''
    samples: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @classmethod
    def from_samples(cls, samples: np.ndarray, unit: str) -> Estimate:
        samples = np.asarray(samples, dtype=float)
        low, median, high = np.percentile(samples, [2.5, 50, 97.5])
        return cls(OK, unit, float(samples.mean()), float(median), float(samples.std(ddof=1)), (low, high), '', samples)

    @classmethod
    def missing(cls, unit: str, reason: str) -> Estimate:
        return cls(NOT_DIFFUSIVE, unit, reason=reason)

    def scaled(self, factor: float, unit: str) -> Estimate:
        if not self.ok:
            return Estimate(self.status, unit, reason=self.reason)
        return Estimate.from_samples(self.samples * factor, unit)

    def to_dict(self) -> dict:
        values = {'status': self.status, 'unit': self.unit}
        if self.ok:
            values.update(mean=self.mean, median=self.median, std=self.std, ci95=[float(x) for x in self.ci95])
        else:
            values['reason'] = self.reason
        return values


def lag_indices(n_frames: int, n_intervals: int, max_lag_fraction: float = 1.0) -> np.ndarray:
    """Up to ``n_intervals`` distinct frame lags from 1 to ``max_lag_fraction`` of the run, evenly spaced.

    At lags near the whole run each ion gives one or two independent displacements, so the MSD there
    is mostly noise; ``max_lag_fraction`` keeps those out of the fits and of "the longest interval".
    kinisi then counts its independent samples over the longest lag, not the run:
    :func:`counted_over_the_run` corrects that.
    """
    longest = int(round(max_lag_fraction * (n_frames - 1)))
    lags = np.unique(np.linspace(1, longest, min(n_intervals, longest)).round().astype(int))
    if len(lags) < MIN_LAGS:
        raise TransportInputError(
            f'max_lag_fraction {max_lag_fraction:g} of {n_frames} frames leaves {len(lags)} time interval(s) '
            f'(need at least {MIN_LAGS} to fit): raise max_lag_fraction, run longer or write frames more often'
        )
    return lags


def counted_over_the_run(msd: sc.DataGroup, source: KinisiDisplacements) -> sc.DataGroup:
    """kinisi's MSD (``calculate_msd``/``calculate_mstd``) with its independent samples counted over the run.

    kinisi counts particles x (longest lag / lag) independent samples at each lag, which is right when
    the longest lag is the whole run. When ``max_lag_fraction`` stops the lags earlier the run still holds
    particles x (run / lag) of them: counts are scaled up, and variances down, by run / longest lag, so the
    posterior of D is as wide as the data allow instead of wider by sqrt(1 / max_lag_fraction).
    """
    factor = source.displacements.sizes['obs'] / float(source.dt_index.values[-1])
    data = msd['da']
    data.coords['n_samples'] = data.coords['n_samples'] * factor
    data.variances = data.variances / factor
    return msd


class KinisiDisplacements:
    """What kinisi's analysers read from a parser, built from unwrapped displacements.

    ``displacements`` (R, T, n, d) relative to frame 0; particles of all replicas are pooled
    (replica-major, so ``system_particles = R`` makes one centre of mass per replica).
    """

    def __init__(self, displacements: np.ndarray, frame_fs: float, lags: np.ndarray, volume_A3: float):
        import scipp as sc

        n_rep, n_frames, n_atoms, dims = displacements.shape
        values = displacements[:, 1:].transpose(1, 0, 2, 3).reshape(n_frames - 1, n_rep * n_atoms, dims)
        self.displacements = sc.array(dims=['obs', 'particle', 'dimension'], values=values, unit='angstrom')
        self.dt_index = sc.array(dims=['time interval'], values=np.asarray(lags, dtype=np.int64))
        self.dt = sc.array(dims=['time interval'], values=np.asarray(lags) * frame_fs / 1000.0, unit='ps')
        self.dimensionality = dims * sc.units.dimensionless
        self._volume = sc.array(dims=['repeats'], values=[volume_A3] * n_rep, unit='angstrom**3')
        self.n_replicas = n_rep


def msd_curve(displacements: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracer MSD tensor <Δr_a Δr_b> (L, 3, 3) over all origins, replicas and atoms, and its standard error (L,).

    Plain numpy, used for plots and for MSDs along any direction; fits use kinisi.
    """
    n_rep, n_frames, n_atoms, _ = displacements.shape
    tensor = np.empty((len(lags), 3, 3))
    error = np.empty(len(lags))
    for k, lag in enumerate(lags):
        step = displacements[:, lag:] - displacements[:, :-lag]
        tensor[k] = np.einsum('rtna,rtnb->ab', step, step) / (step.shape[0] * step.shape[1] * n_atoms)
        squared = (step**2).sum(-1)
        independent = max(n_rep * n_atoms * (n_frames - 1) / lag, 1.0)
        error[k] = squared.std() / np.sqrt(independent)
    return tensor, error


def loglog_slope(lags: np.ndarray, msd: np.ndarray, start: int) -> float:
    x, y = np.log(lags[start:]), np.log(np.clip(msd[start:], 1e-12, None))
    if len(x) < 2:
        return float('nan')
    return float(np.polyfit(x, y, 1)[0])


def diffusive_problem(
    lags_fs: np.ndarray, msd_total: np.ndarray, options: AnalysisOptions, what: str = 'the ions'
) -> str | None:
    """Why this MSD (Å², summed over x, y, z) is not diffusive, or None if it is."""
    start = fit_start(len(lags_fs), options)
    slope = loglog_slope(lags_fs, msd_total, start)
    if msd_total[-1] < options.min_msd_A2:
        return (
            f'{what} moved only {msd_total[-1]:.3g} Å² in {lags_fs[-1] / 1000:g} ps (< {options.min_msd_A2:g} Å², '
            'no hop between sites): too short or too cold for a diffusive regime; run longer or hotter'
        )
    if not slope >= options.min_loglog_slope:
        return (
            f'{what}: d log MSD / d log t = {slope:.2f} in the fit window (< {options.min_loglog_slope:g}): '
            'sub-diffusive (caged), not fitted; run longer'
        )
    return None


def fit_start(n_lags: int, options: AnalysisOptions) -> int:
    return min(int(options.fit_start_fraction * n_lags), n_lags - 3)


def _regression_kwargs(options: AnalysisOptions, start_ps: float) -> dict:
    import scipp as sc

    return dict(
        start_dt=sc.scalar(start_ps, unit='ps'),
        n_samples=options.n_samples,
        n_burn=max(options.n_samples // 2, 50),
        n_walkers=32,
        n_thin=5,
        progress=False,
        random_state=np.random.RandomState(options.seed),
    )


def tracer_diffusion(source: KinisiDisplacements, options: AnalysisOptions) -> tuple[Estimate, np.ndarray]:
    """D* (cm²/s) from the tracer MSD, and kinisi's MSD (Å²) on the lag grid."""
    from kinisi.diffusion_analyzer import DiffusionAnalyzer
    from kinisi.displacement import calculate_msd

    analyser = DiffusionAnalyzer(source)
    analyser._dg = counted_over_the_run(calculate_msd(source, progress=False), source)
    msd = analyser.msd.values
    start = source.dt.values[fit_start(len(msd), options)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        analyser.diffusion(**_regression_kwargs(options, start))
    return Estimate.from_samples(analyser.D.values, 'cm^2/s'), msd


def collective_diffusion(source: KinisiDisplacements, options: AnalysisOptions) -> tuple[Estimate, np.ndarray]:
    """The jump (charge) diffusion coefficient D_J = N D_com (cm²/s) from the centre-of-mass MSD.

    One centre of mass per replica; with few replicas its MSD is noisy, and kinisi's posterior
    is wide accordingly.
    """
    from kinisi.displacement import calculate_mstd
    from kinisi.jump_diffusion_analyzer import JumpDiffusionAnalyzer

    analyser = JumpDiffusionAnalyzer(source)
    analyser._dg = counted_over_the_run(
        calculate_mstd(source, system_particles=source.n_replicas, progress=False), source
    )
    mstd = analyser.mstd.values
    start = source.dt.values[fit_start(len(mstd), options)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        analyser.jump_diffusion(**_regression_kwargs(options, start))
    return Estimate.from_samples(analyser.D_J.values, 'cm^2/s'), mstd


K_B_EV = 8.617333262e-5
E_CHARGE = 1.602176634e-19


def conductivity_factor(n_ions: int, volume_A3: float, charge: float, temperature_K: float) -> float:
    """σ (mS/cm) per unit D (cm²/s): (N/V) (q e)² / (k_B T) (Nernst-Einstein with D*, collective with D_J)."""
    volume_cm3 = volume_A3 * 1e-24
    k_b_joule = K_B_EV * E_CHARGE
    return n_ions / volume_cm3 * (charge * E_CHARGE) ** 2 / (k_b_joule * temperature_K) * 1e3


def einstein_mobility_factor(charge: float, temperature_K: float) -> float:
    """Mobility (cm²/(V s)) per unit D (cm²/s): |q| e / (k_B T) (the Einstein relation)."""
    return abs(charge) / (K_B_EV * temperature_K)


def select(displacements: np.ndarray, components: Sequence[int]) -> np.ndarray:
    return displacements[..., list(components)]
