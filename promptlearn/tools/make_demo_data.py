"""Write the demo dataset DemoShapes (10 classes of drawn shapes, CoOp's layout; see promptlearn/demo/demo_shapes.py).

    <root>/demo_shapes/images/<class>/<class>_<nnn>.jpg
    <root>/demo_shapes/split_zhou_DemoShapes.json   {"train"|"val"|"test": [[relpath, label, classname], ...]}

    python -m promptlearn.tools.make_demo_data --root DATA [--num-classes N]

The Mini-B2N datasets have their own command: ``python -m promptlearn.demo.mini_b2n --root DATA``.
"""
import argparse

from ..demo.demo_shapes import CLASSNAMES, DATASET_DIR, SPLIT_FILE, SPLIT_SIZES, demo_dataset_exists, make_demo_dataset
from ..demo.drawing import COLOURS, render

__all__ = ["CLASSNAMES", "COLOURS", "DATASET_DIR", "SPLIT_FILE", "SPLIT_SIZES", "demo_dataset_exists",
           "make_demo_dataset", "render", "main"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="data root (the dataset goes to ROOT/demo_shapes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=len(CLASSNAMES),
                        help=f"keep the first N classes (default: all {len(CLASSNAMES)})")
    args = parser.parse_args(argv)
    path = make_demo_dataset(args.root, seed=args.seed, num_classes=args.num_classes)
    print(f"Wrote DemoShapes ({args.num_classes} classes) to {path}")


if __name__ == "__main__":
    main()
