#!/usr/bin/env bash
# The GPU check in one command on a bare CUDA machine: installs erc-synth into ./.venv when it is not there yet
# (scripts/install.sh), then runs benchmarks/gpu_suite.py with the arguments given (e.g. --out DIR).
# Why a shell wrapper: a fresh machine has no environment that could import the suite; the install is the
# first step of the same command, and the suite's own budget (--budget, default 480 s) starts after it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import erc_synth, torch, transformers" 2>/dev/null; then
    started=$(date +%s)
    ./scripts/install.sh
    echo "[gpu_suite.sh] installed in $(( $(date +%s) - started )) s"
fi
.venv/bin/python -c "import torch; print('[gpu_suite.sh] torch', torch.__version__, 'cuda', torch.version.cuda, \
'devices', torch.cuda.device_count())"
exec .venv/bin/python benchmarks/gpu_suite.py "$@"
