"""Data pipeline (Dassl's ``dassl.data``)."""
from .data_manager import DataManager, DatasetWrapper, build_data_loader, view_key

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader", "view_key"]
