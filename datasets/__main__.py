"""The data tools, run from the repository root: the readers of this package, checked or fed by the library.

    python -m datasets download --root DATA --dataset caltech101 [--splits-only]
    python -m datasets check --root DATA [--dataset caltech101]

Importing this package registers every reader; ``--dataset`` also takes the stem of a config file in
configs/datasets/.
"""
import os
import sys

from promptlearn.tools import check_data, download_data

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "datasets")
COMMANDS = {"check": check_data.main, "download": download_data.main}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m datasets {{{','.join(COMMANDS)}}} --root DATA [...]; "
              "add --help after the command for its options", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:], config_dir=CONFIG_DIR)


if __name__ == "__main__":
    sys.exit(main())
