"""Print the paper's tables (and Figure 2) from the results under an output folder, next to the published numbers;
with --out-dir, also write each as <slug>.md, <slug>.csv and <slug>.png.

    python scripts/make_tables.py [OUTPUT] [--tables b2n xd dg ablation figure2] [--format markdown|csv|simple]
                                  [--out-dir DIR]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from promptlearn.tools.tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
