#!/usr/bin/env bash
# Install aiida-ionfield and everything it needs on a fresh Debian/Ubuntu machine, then run one thing:
#
#   bash setup_profiles/install.sh main    # + set up the laptop profile and run the main job (ionfield run, Li3N)
#   bash setup_profiles/install.sh tests   # + dev tools, then lint, the whole test-suite and the docs build,
#                                          #   and the TorchSim tests in the gpu environment
#   bash setup_profiles/install.sh gpu     # + the gpu environment: Python >= 3.12, torch-sim (TorchSim backend)
#   bash setup_profiles/install.sh         # install only
#
# Two environments, because TorchSim (torch-sim-atomistic 0.6) needs Python >= 3.12 and the rest does not: the
# main one (IONFIELD_VENV, the daemon, the CLI, DFT, training, ASE MD) and the gpu one (IONFIELD_GPU_VENV,
# default .venv-gpu: the same package with the `gpu` extra, whose `ionfield-md` runs the torchsim backend; point
# an MD code at its bin/ionfield-md). GPU_PYTHON (default: python3.12, python3.13 or pyenv's 3.12) makes it;
# GPU_TORCH_SPEC (default torch==2.13.0: PyPI's CUDA build, several GB, it runs on a CPU too) is its torch.
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

case "$MODE" in install|main|tests|gpu) ;; *) echo "usage: $0 [install|main|tests|gpu]" >&2; exit 2;; esac

gpu_environment() {
    local venv=${IONFIELD_GPU_VENV:-$ROOT/.venv-gpu} python=${GPU_PYTHON:-}
    if [ -z "$python" ]; then
        for candidate in python3.12 python3.13; do
            if "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
                python=$candidate
                break
            fi
        done
    fi
    if [ -z "$python" ] && command -v pyenv >/dev/null 2>&1; then
        python=$(ls -d "$(pyenv root)"/versions/3.1[2-9]*/bin/python 2>/dev/null | head -n 1)
    fi
    [ -n "$python" ] || { echo "the gpu environment needs Python >= 3.12 (set GPU_PYTHON)" >&2; return 1; }
    say "gpu environment in $venv ($("$python" --version): TorchSim backend)"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -c 'import torch' 2>/dev/null || "$venv/bin/pip" install -q "${GPU_TORCH_SPEC:-torch==2.13.0}"
    "$venv/bin/pip" install -q -e "$ROOT[gpu$([ "$MODE" = tests ] && echo ",dev")]"
    "$venv/bin/python" -c 'import torch, torch_sim; print("ok: torch", torch.__version__, "torch-sim", torch_sim.__version__, "- GPU visible" if torch.cuda.is_available() else "- no GPU visible")'
    echo "ok: TorchSim MD code: $venv/bin/ionfield-md"
    GPU_VENV=$venv
}

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
    gpu_environment
    say "TorchSim tests in the gpu environment (on this machine's CPU unless a GPU is visible)"
    "$GPU_VENV/bin/python" -m pytest -m torchsim --timeout=1800 -p no:cacheprovider tests/models/md
    ;;
gpu)
    gpu_environment
    ;;
esac
