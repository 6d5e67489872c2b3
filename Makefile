# Quick start on a fresh machine:
#   make demo   # sets up .venv, the five methods base-to-new on a generated Mini-B2N dataset with a tiny CLIP
#   make benchmark   # every method on every Mini-B2N dataset, seeds 1 2 3, and the tables
#   make test   # sets up .venv, runs ruff and the test suite
.PHONY: setup demo benchmark test lint

setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

benchmark: setup
	@bash scripts/benchmark.sh

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
