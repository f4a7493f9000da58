"""The validation figure: parity of the Gamma frequencies and elastic constants, and every error against its gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .compare import optical

STATUS_COLOURS = {'pass': 'tab:green', 'warn': 'tab:orange', 'fail': 'tab:red'}


def plot_validation(dft: dict, model: dict, table: dict, path, title: str = 'model vs DFT') -> Path:
    """Three panels: Gamma optical frequencies (THz) and elastic constants C_ij (GPa) of the model against DFT,
    with the line of equality; and each compared quantity's error over its fail level, coloured by status,
    with its warn level marked (a bar past 1 failed)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    pairs = (
        (
            axes[0],
            optical(np.asarray(dft['gamma_thz'])),
            optical(np.asarray(model['gamma_thz'])),
            'Gamma optical (THz)',
        ),
        (axes[1], *_elastic_pairs(dft, model), 'C_ij (GPa)'),
    )
    for ax, reference, predicted, name in pairs:
        if len(reference):
            low, high = min(reference.min(), predicted.min()), max(reference.max(), predicted.max())
            pad = 0.05 * (high - low or 1.0)
            ax.plot([low - pad, high + pad], [low - pad, high + pad], color='0.6', lw=1)
            ax.plot(reference, predicted, 'o', ms=5)
        ax.set_xlabel(f'DFT {name}')
        ax.set_ylabel(f'model {name}')
        ax.grid(alpha=0.3)
    axes[0].set_title('phonons at Gamma')
    axes[1].set_title('elastic constants')
    rows = table['rows']
    ratios = [row['error'] / row['fail'] if row['error'] is not None else np.nan for row in rows]
    positions = np.arange(len(rows))
    axes[2].barh(positions, ratios, color=[STATUS_COLOURS[row['status']] for row in rows])
    axes[2].plot([row['warn'] / row['fail'] for row in rows], positions, '|', color='k', ms=12, label='warn')
    axes[2].axvline(1.0, color='tab:red', lw=1, label='fail')
    axes[2].set_yticks(positions, [row['quantity'] for row in rows], fontsize=8)
    axes[2].invert_yaxis()
    axes[2].set_xlabel('error / fail level')
    axes[2].set_title('the gate: ' + ('passed' if table['passed'] else 'FAILED'))
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _elastic_pairs(dft: dict, model: dict) -> tuple[np.ndarray, np.ndarray]:
    """The upper-triangle C_ij that DFT finds non-zero (above 1 GPa), on both sides."""
    reference, predicted = np.asarray(dft['elastic']['matrix']), np.asarray(model['elastic']['matrix'])
    upper = np.triu_indices(6)
    keep = np.abs(reference[upper]) > 1.0
    return reference[upper][keep], predicted[upper][keep]
