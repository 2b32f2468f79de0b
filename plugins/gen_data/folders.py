"""Listing an image folder for ``imagefolder``, ``gen data pack``, ``gen data info`` and ``gen data encode``.

Three ways to say what an image's label is:

- ``layout = "classes"``: one sub-folder of ``root`` per class (ImageNet's ``train/``); the label is the
  position of the folder's name in sorted order, as torchvision's ImageFolder does. Images directly in
  ``root`` are left out.
- ``layout = "flat"``: every image under ``root`` (recursively, FFHQ's ``00000/``... included) is one
  unconditional dataset: ``num_classes = 0`` and every label 0.
- ``layout = "auto"`` (the default): ``classes`` when ``root`` has sub-folders, ``flat`` when it holds
  only images; both at once is an error that names the two choices.
- ``labels = "labels.csv"`` (or ``.json``): every image under ``root`` and its label from a file
  (`read_label_file`); each image must be listed, and each listed file must exist.

Hidden files and folders (a leading dot) are never read.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import posixpath
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

import gen
from gen_data.transforms import IMAGE_EXTENSIONS

#: The values of ``layout``.
LAYOUTS = ("auto", "classes", "flat")
#: Class ids in a labels file are below this (a typo such as 10000000 would make that many classes).
MAX_CLASS_ID = 1_000_000
_INTEGER = re.compile(r"^[+-]?\d+$")
#: Above this many images the size check is spread over worker processes.
_PARALLEL_SIZE_CHECK = 20_000
#: The size warnings given in this process (see `warn_if_smaller`).
_WARNED: set[tuple[str, int, int, int]] = set()


def is_image_name(name: str) -> bool:
    """True for a visible file whose extension is one of `IMAGE_EXTENSIONS` (any case)."""
    return not name.startswith(".") and "." in name and name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS


def _identity(path: str | os.PathLike) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def walk_images(folder: str | os.PathLike, seen: set[tuple[int, int]] | None = None) -> list[str]:
    """Every image file under ``folder`` (recursively, following links, hidden entries left out), sorted.

    A folder is listed once: a link to a folder already listed (``folder`` itself, one in ``seen``, one
    met before) is not followed, with a one-line warning naming it — so a symlink loop neither lists its
    images over and over nor leaves the folders it was given.
    """
    seen = set() if seen is None else seen
    seen.add(_identity(folder))
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        keep = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            path = os.path.join(dirpath, name)
            try:
                key = _identity(path)
            except OSError:
                continue  # a dangling link: nothing to list
            if key in seen:
                _warn_once(
                    f"imagefolder: {path} links to {os.path.realpath(path)}, a folder already listed; not "
                    "followed (a symlink loop, or a second link to one folder)"
                )
                continue
            seen.add(key)
            keep.append(name)
        dirnames[:] = keep
        found.extend(os.path.join(dirpath, f) for f in filenames if is_image_name(f))
    return sorted(found)


def _warn_once(message: str) -> None:
    """One line (attributed to "gen_data", no source line under it), once per process."""
    warnings.warn_explicit(message, UserWarning, filename="gen_data", lineno=0, module="gen_data")


def resolve_layout(root: Path, layout: str) -> tuple[str, list[str]]:
    """The layout of ``root`` from one listing of it (no image is read).

    Returns:
        ``("classes", sorted class folder names)`` or ``("flat", [])``.

    Raises:
        gen.GenError: ``auto`` on a folder holding both images and sub-folders.
    """
    if layout not in LAYOUTS:
        raise gen.GenError(f"imagefolder: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    folders, images = [], []
    for entry in os.scandir(root):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders.append(entry.name)
        elif is_image_name(entry.name):
            images.append(entry.name)
    if layout == "flat":
        return "flat", []
    if layout == "auto" and folders and images:
        raise gen.GenError(
            f"imagefolder: {root} holds both images ({len(images)}, e.g. {sorted(images)[0]}) and sub-folders "
            f'({len(folders)}, e.g. {sorted(folders)[0]}); set layout = "classes" (one class per sub-folder, '
            'the images at the top left out) or layout = "flat" (every image, unconditional)'
        )
    if layout == "classes" or folders:
        return "classes", sorted(folders)
    return "flat", []


def label_file_path(root: str | os.PathLike, labels: str) -> Path:
    """Where ``labels`` lies: as given when absolute, else inside ``root``."""
    path = Path(labels).expanduser()
    return path if path.is_absolute() else Path(root) / path


def _relative_name(name: str, where: str, file: Path) -> str:
    """A listed file name as a normalised relative POSIX path, or a one-line error."""
    if not name.strip():
        raise gen.GenError(f"imagefolder: {file} {where}: the file name is empty")
    rel = posixpath.normpath(name.strip().replace("\\", "/"))
    if rel.startswith("/") or rel == ".." or rel.startswith("../") or re.match(r"^[A-Za-z]:/", rel):
        raise gen.GenError(
            f"imagefolder: {file} {where}: {name!r} must be a path relative to the dataset root"
        )
    if not is_image_name(posixpath.basename(rel)):
        raise gen.GenError(
            f"imagefolder: {file} {where}: {name!r} is not an image file ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return rel


def _csv_rows(file: Path, text: str) -> Iterable[tuple[str, Any, str]]:
    """``(file name, label, "line N")`` of a CSV; a first row whose file name is not an image is a header."""
    reader = csv.reader(text.splitlines())
    first = True
    for row in reader:
        where = f"line {reader.line_num}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if first:
            first = False
            if not is_image_name(posixpath.basename(row[0].strip())):
                continue  # a header such as `filename,label`
        if len(row) != 2:
            raise gen.GenError(
                f"imagefolder: {file} {where}: expected 2 fields `filename,label`, got {len(row)}: "
                f"{','.join(row)!r}"
            )
        yield row[0], row[1], where


def _json_rows(file: Path, text: str) -> Iterable[tuple[str, Any, str]]:
    """``(file name, label, where)`` of a JSON object ``{file: label}`` or a list of ``[file, label]`` pairs."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise gen.GenError(f"imagefolder: {file}: {key!r} is listed twice")
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise gen.GenError(f"imagefolder: {file} line {e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(data, dict):
        for name, label in data.items():
            yield name, label, f"entry {name!r}"
    elif isinstance(data, list):
        for i, pair in enumerate(data):
            where = f"entry {i}"
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise gen.GenError(
                    f'imagefolder: {file} {where}: expected a pair ["file name", label], got {json.dumps(pair)}'
                )
            yield pair[0], pair[1], where
    else:
        raise gen.GenError(
            f'imagefolder: {file} must hold an object {{"file name": label}} or a list of '
            f'["file name", label] pairs, not a {type(data).__name__}'
        )


def read_label_file(file: Path) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Read a labels file: ``filename,label`` rows (CSV) or a JSON object or list of pairs.

    File names are paths relative to the dataset root. A label is a class id when it is an integer
    (``3``, or ``"3"``), else a class name; names are mapped to ids in sorted order. All ids or all
    names, not both.

    Returns:
        ``(classes, {relative path: (label id, where it is listed)})``: the class names (ids as text,
        ``0`` to the largest id, when the file gives ids).

    Raises:
        gen.GenError: one line naming the file and the line (CSV) or entry (JSON) at fault.
    """
    if file.suffix.lower() not in (".csv", ".json"):
        raise gen.GenError(f"imagefolder: labels must be a .csv or .json file, got {file}")
    if not file.is_file():
        raise gen.GenError(
            f"imagefolder: labels file not found: {file} (a relative `labels` is read from `root`)"
        )
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise gen.GenError(f"imagefolder: cannot read labels file {file}: {e}") from None
    rows = _csv_rows(file, text) if file.suffix.lower() == ".csv" else _json_rows(file, text)
    raw: dict[str, tuple[str, str]] = {}  # relative path -> (label text, where)
    first_id, first_name = None, None
    for name, label, where in rows:
        rel = _relative_name(name, where, file)
        if isinstance(label, bool) or not isinstance(label, (int, str)):
            raise gen.GenError(
                f"imagefolder: {file} {where}: the label must be an integer or a class name, got {json.dumps(label)}"
            )
        text_label = str(label).strip()
        if not text_label:
            raise gen.GenError(f"imagefolder: {file} {where}: {rel} has an empty label")
        if rel in raw:
            raise gen.GenError(f"imagefolder: {file} {where}: {rel} is listed again (first at {raw[rel][1]})")
        is_id = bool(_INTEGER.match(text_label))
        if is_id and not 0 <= int(text_label) < MAX_CLASS_ID:
            raise gen.GenError(
                f"imagefolder: {file} {where}: class id {text_label} is out of range (0 to {MAX_CLASS_ID - 1})"
            )
        if is_id and first_id is None:
            first_id = (text_label, where)
        if not is_id and first_name is None:
            first_name = (text_label, where)
        if first_id and first_name:
            raise gen.GenError(
                f"imagefolder: {file} {where}: labels mix class ids ({first_id[0]!r} at {first_id[1]}) and class "
                f"names ({first_name[0]!r} at {first_name[1]}); use ids or names, not both"
            )
        raw[rel] = (text_label, where)
    if not raw:
        raise gen.GenError(f"imagefolder: {file} lists no images; expected `filename,label` rows")
    if first_id is not None:
        ids = {rel: (int(label), where) for rel, (label, where) in raw.items()}
        classes = [str(i) for i in range(max(i for i, _ in ids.values()) + 1)]
        return classes, ids
    classes = sorted({label for label, _ in raw.values()})
    index = {name: i for i, name in enumerate(classes)}
    return classes, {rel: (index[label], where) for rel, (label, where) in raw.items()}


def _labelled_samples(root: Path, file: Path) -> tuple[list[str], list[tuple[str, int]]]:
    classes, listed = read_label_file(file)
    prefix = len(os.path.join(str(root), ""))
    found = {p[prefix:].replace(os.sep, "/"): p for p in walk_images(root)}  # relative POSIX path -> path
    missing = [rel for rel in listed if rel not in found]
    if missing:
        rel = missing[0]
        more = f" ({len(missing)} listed files are missing)" if len(missing) > 1 else ""
        raise gen.GenError(
            f"imagefolder: {file} {listed[rel][1]}: {rel} is not in {root}{more}; remove the row or add the image"
        )
    unlisted = sorted(rel for rel in found if rel not in listed)
    if unlisted:
        raise gen.GenError(
            f"imagefolder: {len(unlisted)} image(s) under {root} are not listed in {file} (first: "
            f"{unlisted[0]}); add a row for each or move them out of the folder"
        )
    return classes, [(found[rel], listed[rel][0]) for rel in sorted(found)]


def scan_image_folder(
    root: str | os.PathLike, *, layout: str = "auto", labels: str = ""
) -> tuple[list[str], list[tuple[str, int]]]:
    """List an image folder (see the module docstring for ``layout`` and ``labels``).

    Returns:
        ``(classes, samples)``: the class names (``[]`` when unconditional; ``num_classes`` is their
        count) and ``(path, label)`` for every image, sorted by class then path (by path with ``flat``
        or ``labels``).

    Raises:
        gen.GenError: when the folder is missing or holds no images, or the labels file is at fault.
    """
    path = Path(root)
    if not str(root):
        raise gen.GenError("imagefolder: set `root` to the folder of images (or of one sub-folder per class)")
    if not path.is_dir():
        raise gen.GenError(f"imagefolder: folder not found: {path}")
    kind = "labels"
    if labels:
        classes, samples = _labelled_samples(path, label_file_path(path, labels))
    else:
        kind, classes = resolve_layout(path, layout)
        if kind == "flat":
            samples = [(p, 0) for p in walk_images(path)]
        else:  # no link in a class folder leads back to the root or into another class
            seen = {_identity(path), *(_identity(path / name) for name in classes)}
            samples = [
                (p, label) for label, name in enumerate(classes) for p in walk_images(path / name, seen)
            ]
    if not samples:
        exts = ", ".join(IMAGE_EXTENSIONS)
        where = (
            f"class sub-folders of {path}; expected {path}/<class>/<image>"
            if kind == "classes"
            else str(path)
        )
        raise gen.GenError(f"imagefolder: no images ({exts}) in {where}")
    return classes, samples


def count_classes(root: str | os.PathLike, *, layout: str = "auto", labels: str = "") -> int | None:
    """``num_classes`` of a folder from a listing of its root or its labels file (no image is read);
    None when the folder or the labels file is not on this machine (gen recipe check and gen train name
    the missing one, by its key)."""
    if not str(root) or not os.path.isdir(root):
        return None
    if labels and not label_file_path(root, labels).is_file():
        return None
    if labels:
        return len(read_label_file(label_file_path(root, labels))[0])
    return len(resolve_layout(Path(root), layout)[1])


def short_side(path: str) -> int:
    """The shorter side of an image from its header (-1 when it cannot be read: the stream reports those)."""
    try:
        with Image.open(path) as image:
            return min(image.size)
    except Exception:  # noqa: BLE001 - a corrupt file is the stream's to report
        return -1


def count_smaller(paths: list[str], size: int, workers: int = 0) -> int:
    """How many images have a short side below ``size`` (read from headers, about 30 us an image).

    More than 20,000 images are spread over ``workers`` processes when ``workers > 1``.
    """
    if workers > 1 and len(paths) > _PARALLEL_SIZE_CHECK:
        context = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
        with context.Pool(workers) as pool:
            sides = pool.map(short_side, paths, chunksize=1024)
    else:
        sides = [short_side(p) for p in paths]
    return sum(1 for s in sides if 0 <= s < size)


def warn_if_smaller(name: str, paths: list[str], size: int, workers: int = 0) -> int:
    """Warn how many images are smaller than ``size`` and so upscaled: one ``UserWarning`` line, once per
    process for the same dataset, size and count (a dataset built twice warns once).

    Returns:
        The count.
    """
    smaller = count_smaller(paths, size, workers)
    key = (name, size, smaller, len(paths))
    if smaller and key not in _WARNED:
        _WARNED.add(key)
        message = (
            f"{name}: {smaller} of {len(paths)} images are smaller than image_size = {size} (short side) and "
            "are upscaled (BICUBIC); lower image_size, or set check_sizes = false to skip this check"
        )
        _warn_once(message)  # attributed to "gen_data": Python prints one line, without code under it
    return smaller
