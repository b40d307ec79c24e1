#!/usr/bin/env bash
# Checks the import layering of docs/architecture.md with import-linter (contracts in pyproject.toml).
# Why a temporary copy: the area folders sit at the repository root and are installed as subpackages of
# erc_synth by a package-dir mapping, which import-linter cannot follow; the copy has the installed layout.
# Usage: scripts/check-layers.sh [SOURCE_ROOT]   (default: this repository)
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$(cd "${1:-$HERE}" && pwd)"
LINT="${LINT_IMPORTS:-$HERE/.venv/bin/lint-imports}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cp -r "$SRC/erc_synth" "$TMP/erc_synth"
for area in dataset_scripts generation classifiers evaluate_metrics hub_cards; do
  cp -r "$SRC/$area" "$TMP/erc_synth/$area"
done
find "$TMP" -name __pycache__ -prune -exec rm -rf {} +
cd "$TMP"
PYTHONPATH="$TMP" "$LINT" --config "$SRC/pyproject.toml" --no-cache
