"""Arrhenius fit D(T) = A exp(-Ea / k_B T) of the zero-field diffusion coefficients (kinisi).

kinisi's ``Arrhenius`` samples Ea and A by MCMC given D with its variances. Its default start
(Ea = 1 eV, A = 1 cm²/s) and ±50 % priors come from an unconstrained optimisation that can land
anywhere, so the priors here are set from a weighted straight-line fit of ln D against 1/T:
uniform over ±(50 % + 5σ) of that fit, wide enough not to bind, narrow enough to sample.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from .diffusion import K_B_EV

MIN_TEMPERATURES = 2


def arrhenius_fit(
    temperatures_K: np.ndarray, d_mean: np.ndarray, d_std: np.ndarray, n_samples: int = 500, seed: int = 0
) -> dict:
    """Ea (eV) and A (cm²/s) with standard deviations; ``status`` says if there were too few points."""
    temperatures_K, d_mean, d_std = (np.asarray(a, dtype=float) for a in (temperatures_K, d_mean, d_std))
    if len(np.unique(temperatures_K)) < MIN_TEMPERATURES:
        return {
            'status': 'too_few_temperatures',
            'reason': f'{len(np.unique(temperatures_K))} temperature(s) with a diffusive E = 0 run; an Arrhenius '
            'fit needs at least 2 (3 or more to judge it)',
            'temperatures_K': temperatures_K.tolist(),
        }
    import scipp as sc
    from kinisi.arrhenius import Arrhenius
    from scipy.stats import uniform

    d_std = np.where(d_std > 0, d_std, 0.1 * d_mean)
    x, y, w = 1.0 / (K_B_EV * temperatures_K), np.log(d_mean), (d_mean / d_std) ** 2
    design = np.vstack([np.ones_like(x), -x]).T
    covariance = np.linalg.inv(design.T @ (w[:, None] * design))
    ln_a, ea = covariance @ design.T @ (w * y)
    ea_err, ln_a_err = np.sqrt(covariance[1, 1]), np.sqrt(covariance[0, 0])
    prefactor = float(np.exp(ln_a))
    ea_half = 0.5 * abs(ea) + 5 * ea_err + 1e-3
    a_low = prefactor * np.exp(-min(5 * ln_a_err + 0.5, 30))
    a_high = prefactor * np.exp(min(5 * ln_a_err + 0.5, 30))
    data = sc.DataArray(
        data=sc.array(dims=['temperature'], values=d_mean, variances=d_std**2, unit='cm^2/s'),
        coords={'temperature': sc.array(dims=['temperature'], values=temperatures_K, unit='K')},
    )
    np.random.seed(seed)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # kinisi's progress bar
        warnings.simplefilter('ignore', RuntimeWarning)
        fit = Arrhenius(data, priors=[uniform(ea - ea_half, 2 * ea_half), uniform(a_low, a_high - a_low)])
        fit.mcmc(n_samples=n_samples, n_burn=max(n_samples // 2, 100), n_thin=5)
    ea_samples = np.asarray(fit.activation_energy.values)
    a_samples = np.asarray(fit.preexponential_factor.values)
    return {
        'status': 'ok',
        'activation_energy_eV': float(ea_samples.mean()),
        'activation_energy_std_eV': float(ea_samples.std(ddof=1)),
        'activation_energy_ci95_eV': np.percentile(ea_samples, [2.5, 97.5]).tolist(),
        'prefactor_cm2_per_s': float(np.median(a_samples)),
        'prefactor_log10_std': float(np.log10(a_samples).std(ddof=1)),
        'weighted_least_squares': {'activation_energy_eV': float(ea), 'activation_energy_std_eV': float(ea_err)},
        'temperatures_K': temperatures_K.tolist(),
        'D_cm2_per_s': d_mean.tolist(),
        'D_std_cm2_per_s': d_std.tolist(),
    }


def arrhenius_curve(fit: dict, temperatures_K: np.ndarray) -> np.ndarray:
    return fit['prefactor_cm2_per_s'] * np.exp(-fit['activation_energy_eV'] / (K_B_EV * np.asarray(temperatures_K)))
