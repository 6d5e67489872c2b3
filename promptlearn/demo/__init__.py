"""The CPU demo and the Mini-B2N benchmark: generated images (drawing.py), the image-caption corpus that
mini-ViT is pre-trained on (corpus.py, pretrain.py), the generated datasets in CoOp's layout (datasets.py:
DemoShapes in demo_shapes.py, Mini-B2N in mini_b2n.py) and the benchmark's check of its targets (report.py).

Part of the library: it imports nothing from the repository's ``datasets`` or ``trainers``; the pre-trained
mini-ViT is a weights file (``weights/mini-ViT.pt``) that ``load_clip`` finds like OpenAI's checkpoints.
"""
