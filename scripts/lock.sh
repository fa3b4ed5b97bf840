#!/usr/bin/env bash
# Refresh constraints.txt, the lock that `make setup` (so `make demo`, `make test` and .ci/run)
# installs through: resolve pyproject.toml's dependencies and the dev extra afresh in a throwaway
# venv, run ruff and the whole suite against them, and write the versions only if both pass.
# Usage: scripts/lock.sh            (about 15 minutes on two cores, most of it the suite)
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${TORCH:-torch==2.13.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip="$work/venv/bin/python -m pip"
$pip install -q --upgrade pip
$pip install -q "$TORCH"
$pip install -q -e ".[dev]"
"$work/venv/bin/ruff" check
"$work/venv/bin/pytest" -q -p no:cacheprovider
{
    echo "# The lock: every dependency of condpred[dev] at the versions the whole suite passed on."
    echo "# Written by scripts/lock.sh on $(date -u +%Y-%m-%d) with $("$work/venv/bin/python" -V)."
    echo "# torch is not here: the Makefile installs it first (TORCH=$TORCH, a CPU build)."
    $pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton)[=-]'
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt refreshed: $(grep -vc '^#' constraints.txt) packages"
