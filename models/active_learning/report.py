"""The active-learning report: one row per iteration and learning-curve plots, from the workchain's history.

Plain Python over the list of per-iteration dicts that ``ActiveLearningWorkChain`` outputs
(``iterations.iter_NN`` while it runs, ``history`` at the end), so ``ionfield al report`` and a
notebook print the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Columns of the table: (header, function of one iteration dict).
COLUMNS = (
    ('iter', lambda e: e.get('iteration')),
    ('frames', lambda e: e.get('dataset_frames')),
    ('Z* frames', lambda e: e.get('dataset_bec_frames')),
    ('explored', lambda e: _get(e, 'selection', 'n_frames')),
    ('accurate', lambda e: _get(e, 'selection', 'shares', 'accurate')),
    ('candidate', lambda e: _get(e, 'selection', 'shares', 'candidate')),
    ('failed', lambda e: _get(e, 'selection', 'shares', 'failed')),
    ('new', lambda e: _get(e, 'labels', 'done')),
    ('F err (eV/Å)', lambda e: _get(e, 'calibration', 'force', 'error_rmse')),
    ('Z* err (e)', lambda e: _get(e, 'calibration', 'bec', 'error_rmse')),
    ('err/dev F', lambda e: _get(e, 'calibration', 'force', 'ratio')),
    ('trust F', lambda e: _pair(e.get('trust'), 'force')),
    ('trust Z*', lambda e: _pair(e.get('trust'), 'bec')),
    ('label s', lambda e: e.get('label_s')),
    ('train s', lambda e: e.get('train_s')),
    ('explore s', lambda e: e.get('explore_s')),
    ('select s', lambda e: e.get('select_s')),
)


def _get(entry: dict, *keys):
    for key in keys:
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry


def _pair(trust: dict | None, name: str):
    if not trust or trust.get(f'{name}_lo') is None:
        return None
    return f'{trust[f"{name}_lo"]:.3g}-{trust[f"{name}_hi"]:.3g}'


def _cell(value) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 100 else f'{value:.0f}'
    return str(value)


def iterations_only(history: Sequence[dict]) -> list[dict]:
    """The per-iteration entries (the final ``stop_reason`` entry dropped)."""
    return [entry for entry in history if 'iteration' in entry]


def table_rows(history: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    headers = [name for name, _ in COLUMNS]
    rows = [[_cell(get(entry)) for _, get in COLUMNS] for entry in iterations_only(history)]
    return headers, rows


def format_table(history: Sequence[dict]) -> str:
    """The history as an aligned text table (one row per iteration)."""
    headers, rows = table_rows(history)
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(headers)]
    lines = ['  '.join(h.rjust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ['  '.join(c.rjust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return '\n'.join(lines)


def plot_history(history: Sequence[dict], path: str | Path) -> Path:
    """A PNG with four panels: dataset size, explored-frame shares, errors on new labels vs dataset size, timings."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    entries = iterations_only(history)
    if not entries:
        raise ValueError('no finished iteration to plot')
    iterations = [e['iteration'] for e in entries]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    ax = axes[0, 0]
    ax.plot(iterations, [e.get('dataset_frames') or 0 for e in entries], 'o-', label='frames')
    ax.plot(iterations, [e.get('dataset_bec_frames') or 0 for e in entries], 's--', label='with Z*')
    ax.set(xlabel='iteration', ylabel='dataset size', title='Dataset')
    ax.legend()
    ax = axes[0, 1]
    for name, style in (('accurate', 'o-'), ('candidate', 's-'), ('failed', 'x-')):
        ax.plot(iterations, [_get(e, 'selection', 'shares', name) or 0 for e in entries], style, label=name)
    ax.set(xlabel='iteration', ylabel='share of explored frames', ylim=(-0.02, 1.02), title='Exploration')
    ax.legend()
    ax = axes[1, 0]
    sizes = [e.get('dataset_frames') or 0 for e in entries]
    force = [_get(e, 'calibration', 'force', 'error_rmse') for e in entries]
    bec = [_get(e, 'calibration', 'bec', 'error_rmse') for e in entries]
    _plot_defined(ax, sizes, force, 'o-', 'force RMSE (eV/Å)')
    _plot_defined(ax, sizes, bec, 's-', 'Z* RMSE (e)')
    ax.set(xlabel='dataset frames', ylabel='committee error on the new labels', title='Learning curve')
    if any(v is not None for v in force + bec):
        ax.set_yscale('log')
        ax.legend()
    ax = axes[1, 1]
    bottom = [0.0] * len(entries)
    for name in ('label', 'train', 'explore', 'select'):
        values = [(e.get(f'{name}_s') or 0.0) / 60 for e in entries]
        ax.bar(iterations, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=False)]
    ax.set(xlabel='iteration', ylabel='wall time (min)', title='Time per iteration')
    ax.legend()
    from matplotlib.ticker import MaxNLocator

    for ax in (axes[0, 0], axes[0, 1], axes[1, 1]):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_defined(ax, x, y, style, label) -> None:
    points = [(a, b) for a, b in zip(x, y, strict=False) if b is not None]
    if points:
        ax.plot([a for a, _ in points], [b for _, b in points], style, label=label)
