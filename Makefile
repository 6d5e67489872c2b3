# Quick start on a fresh machine:
#   make demo   # sets up .venv, trains and evaluates on the generated demo dataset with a tiny CLIP
#   make test   # sets up .venv, runs ruff and the test suite
.PHONY: setup demo test lint

setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
