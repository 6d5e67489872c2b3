#!/usr/bin/env bash
# Create .venv if missing and install the project with everything it needs (idempotent: re-runs only
# when setup.py / requirements.txt change). Set TORCH_SPEC to choose the PyTorch build installed when
# the venv has none (default: torch==2.14.1 torchvision==0.29.1).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat setup.py requirements.txt pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    echo "Installing PyTorch (${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1})"
    # shellcheck disable=SC2086
    .venv/bin/python -m pip install -q ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
  fi
  echo "Installing promptlearn and its dependencies"
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
