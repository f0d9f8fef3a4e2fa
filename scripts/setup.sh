#!/usr/bin/env bash
# Idempotent setup for a fresh machine (Debian/Ubuntu, Python 3.10+, no GPU needed):
#   1. a virtual environment in .venv
#   2. PyTorch 2.13.0 first (the CPU build; installing it before anything else keeps pip from pulling a
#      multi-GB CUDA build through a bare `torch` requirement)
#   3. the workbench with every extra (dashboard, notebooks, peer libraries for tests/benchmarks)
#   4. a Jupyter kernelspec inside the venv (papermill reports and nbval)
#   5. Debian's chromium for the dashboard's browser tests (only when running as root with apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q torch==2.13.0 numpy 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch" || { echo "setup: torch failed to install" >&2; exit 1; }
$PIP install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import workbench, panel, papermill, nbval, dask.distributed" || { echo "setup: package install failed" >&2; exit 1; }
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
      || echo "setup: could not install chromium; browser tests will be skipped" >&2
  else
    echo "setup: install Debian's 'chromium' package for the dashboard's browser tests" >&2
  fi
fi
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
