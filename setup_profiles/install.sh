#!/usr/bin/env bash
# Install aiida-ionfield and everything it needs on a fresh Debian/Ubuntu machine, then run one thing:
#
#   bash setup_profiles/install.sh main    # + set up the laptop profile and run the main job (ionfield run, Li3N)
#   bash setup_profiles/install.sh tests   # + dev tools, then lint, the whole test-suite and the docs build
#   bash setup_profiles/install.sh         # install only
#
# Environment: IONFIELD_VENV (default: .venv in the repository), PYTHON (default: python3, >= 3.11),
# IONFIELD_PROFILE (default: ionfield), TORCH_SPEC (default: torch==2.13.0; a requirement or a wheel file),
# TORCH_INDEX_URL (default: none; a pip index to take torch from, e.g. PyTorch's CPU-only or CUDA index).
# torch is installed first, and only when the environment has none: PyPI's x86_64 Linux torch is a CUDA
# build (several GB; it also runs on a CPU), so a CPU machine that wants the small CPU build sets
# TORCH_INDEX_URL to a CPU index or TORCH_SPEC to a CPU wheel. The script says which build it got.
# Everything else comes from Debian's archive and PyPI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${IONFIELD_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
PROFILE=${IONFIELD_PROFILE:-ionfield}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MODE=${1:-install}
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
say() { printf '\n== %s\n' "$*"; }

case "$MODE" in install|main|tests) ;; *) echo "usage: $0 [install|main|tests]" >&2; exit 2;; esac

say "system packages (Quantum ESPRESSO 6.7: pw.x, ph.x, ld1.x; Open MPI; for the tests SLURM, slurmdbd and munge)"
need=()
packages="quantum-espresso quantum-espresso-data openmpi-bin"
# the tests also run a single-node SLURM cluster (setup_profiles/slurm/local-slurm.sh), with accounting
# (slurmdbd) where a MariaDB/MySQL server answers on localhost
[ "$MODE" = tests ] && packages="$packages slurmctld slurmd slurm-client munge slurmdbd"
for pkg in $packages; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
"$PYTHON" -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "ok: $(command -v pw.x) $(command -v ph.x) $(command -v ld1.x)"

say "Python environment in $VENV"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, not {sys.version}"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
export PATH="$VENV/bin:$PATH" OMP_NUM_THREADS=1
# torch first, from TORCH_SPEC/TORCH_INDEX_URL: `pip install -e .` would otherwise take PyPI's default build.
if python -c 'import torch' 2>/dev/null; then
    echo "torch already installed: kept"
else
    pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
fi
python -c 'import torch; print("ok: torch", torch.__version__, "(CUDA " + torch.version.cuda + " build)" if torch.version.cuda else "(CPU build)", "- GPU visible" if torch.cuda.is_available() else "- no GPU visible")'
extras=$([ "$MODE" = tests ] && echo "[dev]" || echo "")
pip install -q -e "$ROOT$extras"
echo "ok: $(ionfield --version)"

case "$MODE" in
main)
    say "laptop profile '$PROFILE' (SQLite + built-in ZeroMQ broker, daemon), then the main job"
    ionfield setup laptop --profile "$PROFILE"
    ionfield doctor --profile "$PROFILE"
    ionfield run alpha-Li3N --protocol fast --profile "$PROFILE" --wait 36000 -o "$ROOT/li3n_pipeline.html"
    ;;
tests)
    cd "$ROOT"
    say "lint"
    ruff check .
    ruff format --check .
    say "tests (slow end-to-end ones included; opt-in ones need extras CI does not install)"
    python -m pytest -m "not optin" --timeout=1800 --durations=30 -p no:cacheprovider
    say "docs"
    python -m sphinx -W --keep-going -q -b html docs docs/_build/html
    echo "ok: docs/_build/html/index.html"
    ;;
esac
