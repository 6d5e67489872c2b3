"""Print the paper's tables from the results under an output folder, next to the published numbers.

    python scripts/make_tables.py [OUTPUT] [--tables b2n xd dg ablation] [--format markdown|csv|simple]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promptlearn.tools.tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
