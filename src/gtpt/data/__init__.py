"""Data: COCO / COCO-WholeBody records, top-down transforms and the training dataset."""
from gtpt.data.coco import PersonRecord, load_coco_records, load_detection_records
from gtpt.data.dataset import ImageReadError, TopDownDataset
from gtpt.data.transforms import AugmentConfig, box_to_center_scale, get_affine_transform

__all__ = ["PersonRecord", "load_coco_records", "load_detection_records", "ImageReadError",
           "TopDownDataset", "AugmentConfig", "box_to_center_scale", "get_affine_transform"]
