#!/usr/bin/env bash
# Installs Label Studio into its own ./.venv-labelstudio (never into ./.venv), for the human-review round trip
# (`erc-synth review`) and its tests, which start a real server from this venv.
#
# Why a separate venv: Label Studio is a Django application that pins its own versions of many common packages
# (Django, pydantic, numpy, boto and friends); mixing it into the main venv would move what every other test runs
# on. erc-synth never imports it: it talks to the server over its REST API.
#
# Why Chromium too: the review tests render a task's labelling view in headless Chromium (driven by Playwright,
# which cannot download its own browser here), so Debian's `chromium` is installed when it is missing and apt-get
# can run as root; elsewhere that test skips with the reason. ERC_SYNTH_NO_CHROMIUM=1 leaves it out.
#
# Idempotent: a second run only checks a stamp (seconds).
# Environment: PYTHON (interpreter for the venv), ERC_SYNTH_LABELSTUDIO_VENV (venv folder, default
# .venv-labelstudio), ERC_SYNTH_LABELSTUDIO_SPEC (override the Label Studio requirement).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${ERC_SYNTH_LABELSTUDIO_VENV:-.venv-labelstudio}
SPEC=${ERC_SYNTH_LABELSTUDIO_SPEC:-label-studio==1.23.2 label-studio-sdk==2.1.2}
STAMP_FILE="$VENV/.erc-synth-labelstudio-stamp"

if [ "$(cat "$STAMP_FILE" 2>/dev/null)" != "$SPEC" ]; then
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip)
    "${PIP[@]}" install -q --upgrade pip
    # shellcheck disable=SC2086  # SPEC is a list of requirements
    "${PIP[@]}" install -q $SPEC
    echo "$SPEC" > "$STAMP_FILE"
fi
if [ -z "${ERC_SYNTH_NO_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
        && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "chromium could not be installed: the labelling-view screenshot test will skip" >&2
fi
"$VENV/bin/python" -c "import importlib.metadata as m; print('label-studio', m.version('label-studio'), 'in', '$VENV')"
