"""Hand-crafted prompt templates for zero-shot CLIP (CoOp's ``CUSTOM_TEMPLATES`` and ImageNet templates)."""

CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
    "DemoShapes": "a photo of a {}.",
    "MiniShapes": "a photo of a {}.",
    "MiniTextures": "{} texture.",
    "MiniColourShapes": "a photo of a {}.",
    "MiniDigits": "a photo of the digit {}.",
}

DEFAULT_TEMPLATE = "a photo of a {}."

# The 7-template subset used for prompt ensembling (ZeroshotCLIP2)
IMAGENET_TEMPLATES_SELECT = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]


def dataset_template(dataset_name: str) -> str:
    return CUSTOM_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)
