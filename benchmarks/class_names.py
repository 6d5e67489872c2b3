"""Class-name lists of the text-cost measurements: Caltech101's 100 classes (CoOp's reader: the category
folders without BACKGROUND_Google and Faces_easy, four renamed, in label order) and ImageNet's 1000 (CLIP's
cleaned names, as CoOp's ``classnames.txt``, from the test data's copy of the metadata)."""
import json
import os

from promptlearn.modeling import clean_classname

_META = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                     "imagenet_meta.json")
# the category folders in label order (case-sensitive sort)
_CALTECH_TEXT = """
Faces Leopards Motorbikes accordion airplanes anchor ant barrel bass beaver binocular bonsai brain brontosaurus
buddha butterfly camera cannon car_side ceiling_fan cellphone chair chandelier cougar_body cougar_face crab
crayfish crocodile crocodile_head cup dalmatian dollar_bill dolphin dragonfly electric_guitar elephant emu
euphonium ewer ferry flamingo flamingo_head garfield gerenuk gramophone grand_piano hawksbill headphone hedgehog
helicopter ibis inline_skate joshua_tree kangaroo ketch lamp laptop llama lobster lotus mandolin mayfly menorah
metronome minaret nautilus octopus okapi pagoda panda pigeon pizza platypus pyramid revolver rhino rooster
saxophone schooner scissors scorpion sea_horse snoopy soccer_ball stapler starfish stegosaurus stop_sign
strawberry sunflower tick trilobite umbrella watch water_lilly wheelchair wild_cat windsor_chair wrench yin_yang
"""
_CALTECH_FOLDERS = _CALTECH_TEXT.split()
_CALTECH_RENAMES = {"Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike", "airplanes": "airplane"}

CALTECH101 = [clean_classname(_CALTECH_RENAMES.get(folder, folder)) for folder in _CALTECH_FOLDERS]
with open(_META) as _file:
    IMAGENET = json.load(_file)["clip_classnames"]

assert len(CALTECH101) == 100 and len(IMAGENET) == 1000
