"""Files shipped with gtpt: the demo weights and their model card, demo photos, keypoint metadata."""
from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEMO_WEIGHTS = ASSETS / "gtpt_t_body_demo.safetensors"   # GTPT-T body trained on gtpt-mini (see its .md)
DEMO_IMAGE = ASSETS / "demo.jpg"                           # a frame of a video held out of that training
DEMO_TWO_PEOPLE = ASSETS / "demo_two_people.jpg"
