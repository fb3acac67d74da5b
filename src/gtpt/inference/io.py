"""Reading inputs (images, folders, globs, videos, streams, detection boxes) and writing results.

Every problem is raised as `InputError` with the file named, so a batch job can report it and
carry on with the other files.
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union
from urllib.parse import urlparse

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class InputError(ValueError):
    """An input cannot be used; the message names the file and the problem."""


# ------------------------------------------------------------------ images
def read_image(path) -> np.ndarray:
    """Image file -> uint8 BGR [h, w, 3] (grey and alpha images are converted)."""
    import cv2
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile + imdecode also takes non-ASCII paths
    if data.size == 0:
        raise InputError(f"{path}: empty file")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: cannot decode as an image (corrupt or not an image file)")
    return img


def to_bgr(image, rgb: bool = False) -> np.ndarray:
    """Path, numpy array (BGR, or RGB with rgb=True; grey or 4-channel accepted) or PIL image
    -> contiguous uint8 BGR [h, w, 3]."""
    import cv2
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image, without importing PIL
        return np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
    if not isinstance(image, np.ndarray):
        raise InputError(f"unsupported image type {type(image).__name__}: pass a path, a numpy array or a PIL image")
    if image.dtype != np.uint8:
        raise InputError(f"image array must be uint8 (0..255), got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"image array must be [h, w], [h, w, 3] or [h, w, 4], got {list(image.shape)}")
    image = image[..., :3]
    if rgb:
        image = image[..., ::-1]
    return np.ascontiguousarray(image)


# ------------------------------------------------------------------ input lists
@dataclass(frozen=True)
class InputItem:
    path: Union[Path, str]   # a str for a stream
    kind: str  # "image", "video" or "stream"


def is_stream(source) -> bool:
    """A camera index (0, "1") or a URL OpenCV reads through FFmpeg (rtsp://, http://, ...), unless a
    file of that name exists (the file wins)."""
    text = str(source)
    return (isinstance(source, int) or text.isdigit() or "://" in text) and not Path(text).is_file()


def stream_name(source) -> str:
    """A file-system-safe output name for a stream: camera0, or the URL's last path part (else its host)."""
    if str(source).isdigit():
        return f"camera{int(source)}"
    url = urlparse(str(source))
    return _safe_name(Path(url.path).stem or url.hostname or "", "stream")


def _kind(path: Path) -> Optional[str]:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


def expand_inputs(inputs: Iterable) -> tuple[list[InputItem], list[str]]:
    """Files, folders (their files, sorted, not recursive), glob patterns and streams (camera
    indices and URLs, `is_stream`) -> items, problems.

    Problems are messages for inputs that do not exist or are neither images nor videos
    (by extension; undecodable files and unreachable streams are found when they are read).
    """
    items, problems, seen = [], [], set()

    def add(p: Path, explicit: bool):
        if p in seen:
            return
        seen.add(p)
        kind = _kind(p)
        if kind is None:
            if explicit or not p.name.startswith("."):
                problems.append(f"{p}: skipped, not an image or video file (extension '{p.suffix}')")
            return
        items.append(InputItem(p, kind))

    for raw in inputs:
        text = str(raw)
        p = Path(text)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                problems.append(f"{p}: folder has no files")
            for f in files:
                add(f, explicit=False)
        elif p.is_file():
            add(p, explicit=True)
        elif is_stream(text):
            if text not in seen:
                seen.add(text)
                items.append(InputItem(text, "stream"))
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append(f"{text}: pattern matches no files")
            for f in matches:
                add(f, explicit=False)
        else:
            problems.append(f"{p}: no such file or folder")
    return items, problems


def image_ids(paths: list[Path]) -> dict[Path, int]:
    """COCO image ids: the number in the file name when every name is a number
    (000000397133.jpg -> 397133, as COCO names files), else 1..N in order."""
    stems = [p.stem for p in paths]
    if stems and all(s.isdigit() for s in stems) and len(set(map(int, stems))) == len(stems):
        return {p: int(p.stem) for p in paths}
    return {p: i + 1 for i, p in enumerate(paths)}


# ------------------------------------------------------------------ detection boxes
def _box_row(entry, where: str) -> list[float]:
    """One box as [x, y, w, h, score] from [x,y,w,h(,s)] or {"bbox": [...], "score": s}."""
    if isinstance(entry, dict):
        if "bbox" not in entry:
            raise InputError(f"{where}: entry has no 'bbox'")
        row, score = entry["bbox"], entry.get("score", 1.0)
    else:
        row, score = entry, None
    try:
        vals = [float(v) for v in row]
    except (TypeError, ValueError):
        raise InputError(f"{where}: box {row!r} is not a list of numbers") from None
    if len(vals) not in (4, 5) or (score is not None and len(vals) != 4):
        raise InputError(f"{where}: a box is [x, y, w, h] or [x, y, w, h, score], got {row!r}")
    if score is not None:
        vals.append(float(score))
    return vals + [1.0] * (5 - len(vals))


def _is_person(entry) -> bool:
    return not isinstance(entry, dict) or int(entry.get("category_id", 1)) == 1


def load_boxes(path, image_paths: list[Path]) -> dict[Path, tuple[Optional[int], np.ndarray]]:
    """Person boxes per input image from a json file -> {image path: (image_id, boxes [N, 5])}.

    Accepted layouts:
      * COCO detection results: [{"image_id" or "file_name", "bbox": [x,y,w,h], "score",
        "category_id"}, ...] (only category 1, person, is used);
      * a COCO dataset: {"images": [{"id", "file_name"}], "annotations": [...]} (GT boxes);
      * {"<file name>": [[x,y,w,h(,score)], ...], ...};
      * per-image: [[x,y,w,h(,score)], ...] or [{"bbox": ...}, ...] when there is one input image.
    Images are matched by file name, or by image_id = the number in the file name. Images the
    file does not mention get no boxes. Raises InputError when it mentions none of the inputs.
    """
    path = Path(path)
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: boxes file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid json ({e})") from None

    by_id: dict[int, list] = {}
    by_name: dict[str, list] = {}
    id_of_name: dict[str, int] = {}   # image ids the file gives for names, kept in the results
    unkeyed: list = []
    if isinstance(data, dict) and "images" in data:
        # every listed image is matched by its file name, even one without people
        names = {int(im["id"]): Path(im.get("file_name", "")).name for im in data["images"]}
        by_name = {n: [] for n in names.values() if n}
        id_of_name = {n: i for i, n in names.items() if n}
        for ann in data.get("annotations", []):
            name = names.get(int(ann.get("image_id", -1)))
            if name and _is_person(ann) and not ann.get("iscrowd", 0):
                by_name[name].append(ann)
    elif isinstance(data, dict):
        for name, boxes in data.items():
            if not isinstance(boxes, list):
                raise InputError(f"{path}: value for '{name}' must be a list of boxes")
            by_name[Path(name).name] = boxes
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            if not _is_person(entry):
                continue
            if isinstance(entry, dict) and "file_name" in entry:
                name = Path(entry["file_name"]).name
                by_name.setdefault(name, []).append(entry)
                if "image_id" in entry:
                    id_of_name[name] = int(entry["image_id"])
            elif isinstance(entry, dict) and "image_id" in entry:
                by_id.setdefault(int(entry["image_id"]), []).append(entry)
            else:
                unkeyed.append((i, entry))   # i: its place in the file, for messages
        if unkeyed and (by_id or by_name):
            raise InputError(f"{path}: some entries name an image (image_id / file_name) and some do not")
    else:
        raise InputError(f"{path}: expected a json list or object of boxes, got {type(data).__name__}")

    out: dict[Path, tuple[Optional[int], np.ndarray]] = {}
    if unkeyed:
        if len(image_paths) != 1:
            raise InputError(f"{path}: its boxes name no image (no image_id / file_name), which only "
                             f"works with exactly one input image, got {len(image_paths)}")
        rows = [_box_row(e, f"{path}: entry {i}") for i, e in unkeyed]
        return {image_paths[0]: (None, np.asarray(rows, np.float64).reshape(-1, 5))}
    for p in image_paths:
        entries, image_id = by_name.get(p.name), id_of_name.get(p.name)
        if entries is None and p.stem.isdigit() and int(p.stem) in by_id:
            image_id = int(p.stem)
            entries = by_id[image_id]
        if entries is not None:
            rows = [_box_row(e, f"{path}: boxes for {p.name}") for e in entries]
            out[p] = (image_id, np.asarray(rows, np.float64).reshape(-1, 5))
    if not out:
        named = sorted(by_name)[:5] or sorted(by_id)[:5]
        raise InputError(
            f"{path}: names none of the {len(image_paths)} input image(s) (it refers to e.g. {named}; "
            f"inputs are e.g. {[p.name for p in image_paths[:5]]}). Images are matched by file name, "
            f"or by image_id = the number in the file name (000000397133.jpg -> 397133).")
    return out


# ------------------------------------------------------------------ output
def write_json(path, obj) -> Path:
    """Write json atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, separators=(",", ":")))
    os.replace(tmp, path)
    return path


class JsonListWriter:
    """A json list written item by item, without keeping the items in memory (a camera may run for
    hours): PATH holds [items], or {**header, key: [items]} when a header is given. Items go to
    PATH.partial.jsonl as they come, one json object per line, flushed; close() writes PATH
    atomically from that file and removes it. If the process dies first, the .jsonl keeps every
    item written."""

    def __init__(self, path, header: Optional[dict] = None, key: str = "frames"):
        self.path, self.header, self.key, self.count = Path(path), header, key, 0
        self.lines = self.path.with_name(self.path.name.removesuffix(".json") + ".partial.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.lines, "w", buffering=1)   # line-buffered: each item reaches the disk

    def append(self, item: dict) -> None:
        self._file.write(json.dumps(item, separators=(",", ":")) + "\n")
        self.count += 1

    def close(self) -> Path:
        self._file.close()
        opening = "[" if self.header is None else \
            json.dumps({**self.header, self.key: []}, separators=(",", ":"))[:-2]   # ... "key":[
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as out, open(self.lines) as lines:
            out.write(opening)
            for i, line in enumerate(lines):
                out.write(("," if i else "") + line.rstrip("\n"))
            out.write("]" if self.header is None else "]}")
        os.replace(tmp, self.path)
        self.lines.unlink()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.lines.unlink(missing_ok=True)


def safe_stem(path: Path) -> str:
    """A file-system-safe output name for an input file."""
    return _safe_name(Path(path).stem, "input")


def _safe_name(text: str, default: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text) or default


__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "InputError", "InputItem", "read_image", "to_bgr",
           "expand_inputs", "is_stream", "stream_name", "image_ids", "load_boxes", "write_json", "JsonListWriter",
           "safe_stem"]
