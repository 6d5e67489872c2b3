"""promptlearn: a Dassl-compatible engine for CLIP prompt learning (ZS-CLIP, CoOp, CoCoOp, MaPLe, GOPro)."""

__version__ = "1.0.0"
