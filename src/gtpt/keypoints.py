"""Keypoint metadata for COCO body (17) and COCO-WholeBody (133).

Sigmas, flip pairs, part ranges and half-body sets come from the reference recipe
(`assets/keypoints.json`); names, skeleton and colours are the standard COCO ones.
Everything downstream (codec flip-back, augmentation, OKS, drawing) reads this module.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

BODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FOOT_NAMES = ("left_big_toe", "left_small_toe", "left_heel",
              "right_big_toe", "right_small_toe", "right_heel")
_HAND_JOINTS = ("root",) + tuple(f"{f}{i}" for f in ("thumb", "forefinger", "middle_finger",
                                                    "ring_finger", "pinky_finger") for i in range(1, 5))

# 0-based links; the colour index says which body part a link belongs to.
BODY_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
# part -> RGB; links are coloured by the part of their joints.
PART_COLOURS = {
    "head": (51, 153, 255), "left_arm": (0, 255, 0), "right_arm": (255, 128, 0),
    "torso": (51, 153, 255), "left_leg": (0, 255, 0), "right_leg": (255, 128, 0),
    "foot": (255, 0, 255), "face": (255, 255, 255), "left_hand": (0, 255, 255),
    "right_hand": (255, 255, 0),
}
_BODY_JOINT_PART = ("head",) * 5 + ("left_arm", "right_arm") * 3 + ("left_leg", "right_leg") * 3


def _hand_links(offset: int) -> list[tuple[int, int]]:
    links = []
    for finger in range(5):
        base = offset + 1 + 4 * finger
        links.append((offset, base))
        links += [(base + i, base + i + 1) for i in range(3)]
    return links


@dataclass(frozen=True)
class KeypointSpec:
    """Everything the pipeline needs to know about one keypoint layout."""

    name: str
    names: tuple[str, ...]
    sigmas: np.ndarray                     # [K] OKS sigmas
    flip_pairs: tuple[tuple[int, int], ...]
    upper_body_ids: tuple[int, ...]        # half-body augmentation sets
    lower_body_ids: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    joint_parts: tuple[str, ...]           # part name per joint (for colours)
    parts: dict = field(default_factory=dict)  # part -> (start, end), whole-body only

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def flip_index(self) -> np.ndarray:
        """[K] permutation that swaps left and right joints."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def link_colour(self, a: int, b: int) -> tuple[int, int, int]:
        part = self.joint_parts[b] if self.joint_parts[a] == "head" else self.joint_parts[a]
        if self.joint_parts[a] != self.joint_parts[b] and {self.joint_parts[a], self.joint_parts[b]} <= {
                "left_arm", "right_arm", "left_leg", "right_leg", "head"}:
            part = "torso"
        return PART_COLOURS[part]


@lru_cache(maxsize=1)
def _raw() -> dict:
    with resources.files("gtpt").joinpath("assets/keypoints.json").open() as f:
        return json.load(f)


@lru_cache(maxsize=None)
def get_keypoint_spec(num_joints_or_name) -> KeypointSpec:
    """`17`/"body" or `133`/"wholebody" -> KeypointSpec."""
    raw = _raw()
    key = {17: "body", 133: "wholebody"}.get(num_joints_or_name, num_joints_or_name)
    if key == "body":
        return KeypointSpec(
            name="body", names=BODY_NAMES, sigmas=np.asarray(raw["body_sigmas"], np.float64),
            flip_pairs=tuple(map(tuple, raw["body_flip_pairs"])),
            upper_body_ids=tuple(raw["half_body"]["body_upper_ids"]),
            lower_body_ids=tuple(raw["half_body"]["body_lower_ids"]),
            skeleton=BODY_SKELETON, joint_parts=_BODY_JOINT_PART)
    if key == "wholebody":
        parts = {k: tuple(v) for k, v in raw["wholebody_parts"].items()}
        names = (BODY_NAMES + FOOT_NAMES + tuple(f"face_{i}" for i in range(68))
                 + tuple(f"left_hand_{j}" for j in _HAND_JOINTS)
                 + tuple(f"right_hand_{j}" for j in _HAND_JOINTS))
        pairs = [tuple(p) for k in ("body", "foot", "face", "hand") for p in raw[f"{k}_flip_pairs"]]
        foot_links = ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))
        skeleton = BODY_SKELETON + foot_links + tuple(_hand_links(91)) + tuple(_hand_links(112)) \
            + ((9, 91), (10, 112))
        joint_parts = (_BODY_JOINT_PART + ("foot",) * 6 + ("face",) * 68
                       + ("left_hand",) * 21 + ("right_hand",) * 21)
        return KeypointSpec(
            name="wholebody", names=names, sigmas=np.asarray(raw["wholebody_sigmas"], np.float64),
            flip_pairs=tuple(pairs),
            upper_body_ids=tuple(raw["half_body"]["wholebody_upper_ids"]),
            lower_body_ids=tuple(raw["half_body"]["wholebody_lower_ids"]),
            skeleton=skeleton, joint_parts=joint_parts, parts=parts)
    raise ValueError(f"unknown keypoint layout {num_joints_or_name!r}: expected 17/'body' or 133/'wholebody'")
