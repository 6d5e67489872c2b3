"""Speed and memory benchmarks: each module times a naive and an optimized path side by side and prints
their ratios (see README.md). Run one with ``python benchmarks/<name>.py`` or all with
``python benchmarks/run_all.py``."""
