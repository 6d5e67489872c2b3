"""The methods: importing this package registers every trainer."""
from . import cocoop, coop, maple, zsclip  # noqa: F401
