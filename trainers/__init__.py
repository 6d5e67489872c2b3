"""The methods: importing this package registers every trainer."""
from . import cocoop, coop, gopro, maple, slip, zsclip  # noqa: F401
