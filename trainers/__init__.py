"""The methods: importing this package registers every trainer."""
from . import coop, gopro, zsclip  # noqa: F401
