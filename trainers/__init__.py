"""The methods: importing this package registers every trainer."""
from . import cocoop, coop, gopro, maple, zsclip  # noqa: F401
