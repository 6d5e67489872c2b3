"""Dataset readers: importing this package registers every dataset."""
from . import demo_shapes  # noqa: F401
