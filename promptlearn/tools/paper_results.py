"""GOPro's published results (BMVC 2023; ViT-B/16, 16 shots, top-1 accuracy in %), for the methods of this
codebase, keyed by the names the paper uses (CLIP = ``ZeroshotCLIP``) and the dataset-config stems. The SLIP
rows are the paper's comparison numbers; this codebase's ``SLIP`` trainer is its reading of that baseline.

Source: the poster's Tables 1-3 and the tables of the official repository (``images/b2n.png``,
``images/cd.png``, ``images/dg.png``). One correction: CoCoOp's new-class accuracy on Flowers102 is printed
as 71.15, but its harmonic mean (81.71) and CoCoOp's 11-dataset average (71.69) both imply 71.75.
"""

#: trainer name -> the method's row in the paper
PAPER_METHOD = {"ZeroshotCLIP": "CLIP", "SLIP": "SLIP", "CoOp": "CoOp", "CoCoOp": "CoCoOp", "MaPLe": "MaPLe",
                "GOPro": "GOPro"}

SLIP_NOTE = ("SLIP is this codebase's reading of the paper's SLIP baseline (README, \"SLIP\"): the paper gives no "
             "recipe for it.")

FLOWERS_COCOOP_NOTE = ("CoCoOp's published new-class accuracy on Flowers102 is printed as 71.15; 71.75 is used, "
                       "as its HM (81.71) and CoCoOp's 11-dataset average (71.69) imply.")

#: base-to-new, per dataset: method -> dataset -> (Base, New, HM)
B2N = {
    "CLIP": {
        "imagenet": (72.43, 68.14, 70.22), "caltech101": (96.84, 94.00, 95.40), "oxford_pets": (91.17, 97.26, 94.12),
        "stanford_cars": (63.37, 74.89, 68.65), "oxford_flowers": (72.08, 77.80, 74.83),
        "food101": (90.10, 91.22, 90.66), "fgvc_aircraft": (27.19, 36.29, 31.09), "sun397": (69.36, 75.35, 72.23),
        "dtd": (53.24, 59.90, 56.37), "eurosat": (56.48, 64.05, 60.03), "ucf101": (70.53, 77.50, 73.85),
    },
    "SLIP": {
        "imagenet": (72.95, 69.76, 71.32), "caltech101": (96.97, 94.05, 95.49), "oxford_pets": (91.23, 97.04, 94.05),
        "stanford_cars": (63.52, 74.92, 68.75), "oxford_flowers": (72.17, 77.87, 74.91),
        "food101": (90.14, 91.27, 90.70), "fgvc_aircraft": (27.49, 36.11, 31.22), "sun397": (69.35, 75.39, 72.24),
        "dtd": (56.71, 59.30, 57.98), "eurosat": (56.43, 63.79, 59.88), "ucf101": (70.55, 77.56, 73.89),
    },
    "CoOp": {
        "imagenet": (76.47, 67.88, 71.92), "caltech101": (98.00, 89.81, 93.73), "oxford_pets": (93.67, 95.29, 94.47),
        "stanford_cars": (78.12, 60.40, 68.13), "oxford_flowers": (97.60, 59.67, 74.06),
        "food101": (88.33, 82.26, 85.19), "fgvc_aircraft": (40.44, 22.30, 28.75), "sun397": (80.60, 65.89, 72.51),
        "dtd": (79.44, 41.18, 54.24), "eurosat": (92.19, 54.74, 68.69), "ucf101": (84.69, 56.05, 67.46),
    },
    "CoCoOp": {
        "imagenet": (75.98, 70.43, 73.10), "caltech101": (97.96, 93.81, 95.84), "oxford_pets": (95.20, 97.69, 96.43),
        "stanford_cars": (70.49, 73.59, 72.01), "oxford_flowers": (94.87, 71.75, 81.71),
        "food101": (90.70, 91.29, 90.99), "fgvc_aircraft": (33.41, 23.71, 27.74), "sun397": (79.74, 76.86, 78.27),
        "dtd": (77.01, 56.00, 64.85), "eurosat": (87.49, 60.04, 71.21), "ucf101": (82.33, 73.45, 77.64),
    },
    "MaPLe": {
        "imagenet": (76.66, 70.54, 73.47), "caltech101": (97.74, 94.36, 96.02), "oxford_pets": (95.43, 97.76, 96.58),
        "stanford_cars": (72.94, 74.00, 73.47), "oxford_flowers": (95.92, 72.46, 82.56),
        "food101": (90.71, 92.05, 91.38), "fgvc_aircraft": (37.44, 35.61, 36.50), "sun397": (80.82, 78.70, 79.75),
        "dtd": (80.36, 59.18, 68.16), "eurosat": (94.07, 73.23, 82.35), "ucf101": (83.00, 78.66, 80.77),
    },
    "GOPro": {
        "imagenet": (78.56, 73.22, 75.80), "caltech101": (98.86, 95.78, 97.30), "oxford_pets": (96.36, 98.49, 97.41),
        "stanford_cars": (77.59, 75.35, 76.45), "oxford_flowers": (97.73, 77.91, 86.70),
        "food101": (92.37, 93.56, 92.96), "fgvc_aircraft": (37.89, 36.44, 37.15), "sun397": (81.94, 81.64, 81.79),
        "dtd": (82.41, 62.95, 71.38), "eurosat": (94.92, 76.27, 84.58), "ucf101": (87.67, 78.91, 83.06),
    },
}

#: Table 1, base-to-new average over the 11 datasets: method -> (Base, New, HM)
B2N_AVERAGE = {
    "CLIP": (69.34, 74.22, 71.70),
    "SLIP": (69.77, 74.28, 71.96),
    "CoOp": (82.69, 63.22, 71.66),
    "CoCoOp": (80.47, 71.69, 75.83),
    "MaPLe": (82.28, 75.14, 78.55),
    "GOPro": (84.21, 77.32, 80.62),
}

#: cross-dataset transfer: method -> dataset -> accuracy (ImageNet is the source) and "average" (10 targets)
CROSS_DATASET = {
    method: dict(zip(
        ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
         "sun397", "dtd", "eurosat", "ucf101", "average"), values))
    for method, values in {
        "CLIP": (66.73, 93.31, 89.10, 65.64, 70.73, 85.86, 24.72, 62.58, 44.39, 48.28, 67.72, 65.23),
        "SLIP": (68.01, 93.52, 89.23, 65.42, 70.55, 85.92, 25.04, 62.74, 44.16, 48.61, 67.93, 65.31),
        "CoOp": (71.51, 93.70, 89.14, 64.51, 68.71, 85.30, 18.47, 64.15, 41.92, 46.39, 66.55, 63.88),
        "CoCoOp": (71.02, 94.43, 90.14, 65.32, 71.88, 86.06, 22.94, 67.36, 45.73, 45.37, 68.21, 65.74),
        "MaPLe": (70.72, 93.53, 90.49, 65.57, 72.23, 86.20, 24.74, 67.01, 46.49, 48.06, 68.69, 66.30),
        "GOPro": (73.27, 94.81, 92.73, 68.67, 72.60, 87.74, 25.85, 68.70, 48.04, 49.43, 69.98, 67.86),
    }.items()
}

#: Table 2, domain generalization: method -> dataset -> accuracy (ImageNet is the source)
DOMAIN_GENERALIZATION = {
    method: dict(zip(("imagenet", "imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"), values))
    for method, values in {
        "CLIP": (66.73, 60.83, 46.15, 47.77, 73.96),
        "SLIP": (68.01, 61.12, 46.35, 47.54, 73.88),
        "CoOp": (71.51, 64.20, 47.99, 49.71, 75.21),
        "CoCoOp": (71.02, 64.07, 48.75, 50.63, 76.18),
        "MaPLe": (70.72, 64.07, 49.15, 50.90, 76.98),
        "GOPro": (73.27, 65.35, 50.36, 52.23, 78.02),
    }.items()
}

#: Table 3, GOPro's loss ablation (base-to-new average over the 11 datasets): row -> (Base, New, HM).
#: x1 is the MoCo v3 view and x2 the AugMix view (the figure's order; the text does not say).
ABLATION = {
    "ce": (81.34, 72.16, 76.48),
    "ce_con": (82.15, 75.02, 78.42),
    "ce_sem1": (83.23, 74.64, 78.70),
    "ce_sem2": (81.65, 73.97, 77.62),
    "ce_sem12": (83.87, 75.15, 79.27),
    "full": (84.21, 77.32, 80.62),
}
