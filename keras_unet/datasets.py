"""Where data comes from: public datasets (downloaded once, checked, cached), synthetic cells
and volumes, and :data:`LOADERS`, the one list of dataset names. Each loader takes ``data_dir``
(None: the cache) and returns ``(train, test)`` :class:`Split` s. Details: docs/datasets.md."""

import contextlib
import csv
import gzip
import hashlib
import json
import os
import posixpath
import random
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import warnings
import zipfile
from importlib import resources
from pathlib import Path, PureWindowsPath

import nibabel
import numpy as np
from PIL import Image
from scipy import ndimage, spatial

from keras_unet.checks import check_choice, check_int, check_number, count, fail
from keras_unet.images import (Split, as_mask, check_same_size, file_stem, from_folder,
                               image_files, locked, normalize_intensity, read_image, read_mask,
                               read_volume, stack_or_list, write_atomically)

COMPLETE = ".complete"  # the marker of a completely downloaded and unpacked dataset
TIMEOUT = 60  # seconds without data after which a download is given up
ARCHIVE_KINDS = ("tar", "zip")  # the registry's archive kinds, unpacked into the folder
#: A dataset's folder (in the cache and in a data folder) where it is not its name.
FOLDERS = {"isbi2012": "isbi2012_em"}


class DownloadError(OSError):
    """A download failed: HTTP error, connection cut, wrong checksum."""


# ----------------------------------------------------------------------- registry
def _isbi_entries():
    """ISBI 2012's files from the package's ``isbi2012.sha256`` (sha256sum's format)."""
    remote = {"images": "train/image", "masks": "train/label", "test_images": "test"}
    lines = resources.files("keras_unet").joinpath("isbi2012.sha256").read_text().splitlines()
    return [{"url": f"{remote[file.split('/')[0]]}/{int(Path(file).stem)}.png", "sha256": sha256,
             "filename": file, "kind": "file"} for sha256, file in map(str.split, lines)]


#: Where each downloadable dataset comes from (a mirror may replace one): REGISTRY's base.
BASE_URLS = {
    "isbi2012": "https://raw.githubusercontent.com/zhixuhao/unet/"
                "b45af4d458437d8281cc218a07fd4380818ece4a/data/membrane/",
    "oxford_pets": "https://www.robots.ox.ac.uk/~vgg/data/pets/data/",
}

#: Per dataset, its files: ``url`` (under ``BASE_URLS[name]``), ``sha256`` (or ``md5``),
#: ``filename`` and ``kind`` (``"file"`` is kept, ``"tar"``/``"zip"`` unpacked): docs/datasets.md.
REGISTRY = {
    "isbi2012": _isbi_entries(),
    "oxford_pets": [{"url": name, "sha256": sha256, "filename": name, "kind": "tar"}
                    for name, sha256 in {
        "images.tar.gz": "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        "annotations.tar.gz": "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
    }.items()],
}

#: The Medical Segmentation Decathlon's tasks, the MD5 of each archive (no SHA-256 published) as
#: MONAI lists them: Project-MONAI/MONAI, monai/apps/datasets.py, DecathlonDataset.resource/.md5.
MSD_TASKS = {
    "Task01_BrainTumour": "240a19d752f0d9e9101544901065d872",
    "Task02_Heart": "06ee59366e1e5124267b774dbd654057",
    "Task03_Liver": "a90ec6c4aa7f6a3d087205e23d4e6397",
    "Task04_Hippocampus": "9d24dba78a72977dbd1d2e110310f31b",
    "Task05_Prostate": "35138f08b1efaef89d7424d2bcc928db",
    "Task06_Lung": "8afd997733c7fc0432f71255ba4e52dc",
    "Task07_Pancreas": "4f7080cfca169fa8066d17ce6eb061e4",
    "Task08_HepaticVessel": "641d79e80ec66453921d997fbf12a29c",
    "Task09_Spleen": "410d4a301da4e5b2f6f86ec3ddba524e",
    "Task10_Colon": "bad7a188931dc2f6acf72b08eb6202d0",
}
BASE_URLS.update(dict.fromkeys(MSD_TASKS, "https://msd-for-monai.s3-us-west-2.amazonaws.com/"))
REGISTRY.update({task: [{"url": f"{task}.tar", "md5": md5, "filename": f"{task}.tar",
                         "kind": "tar"}] for task, md5 in MSD_TASKS.items()})
MSD_WINDOWS = {"Task03_Liver": "liver", "Task06_Lung": "lung"}  # CT windows other than abdomen

#: The five tumour volumes: pyradiomics 3.0.1's test cases (its sdist on PyPI), NRRD pairs
#: converted to NIfTI (:func:`_volumes_from_sdist`): case -> (modality, origin of the scan).
TUMOUR_CASES = {
    "brain1": ("MR (T1 post-Gd)", "TCIA TCGA-GBM patient TCGA-02-0003"),
    "brain2": ("MR (T1 post-Gd)", "TCIA TCGA-GBM patient TCGA-02-0006"),
    "breast1": ("MR (breast DCE pre-contrast)",
                "OpenCAD 3D Slicer extension tutorial data TestPatient1 (cropped)"),
    "lung1": ("CT", "TCIA TCGA-LUAD patient TCGA-17-Z013"),
    "lung2": ("CT", "TCIA TCGA-LUAD patient TCGA-17-Z015")}
BASE_URLS["tumour_volumes"] = ("https://files.pythonhosted.org/packages/1b/35/"
                               "c7f7fb7affd302fd8107dcee6b6e7aaf3708b75ad69d5f9a3dfcadb73eaa/")
REGISTRY["tumour_volumes"] = [{"url": "pyradiomics-3.0.1.tar.gz", "kind": "tar",
                               "filename": "pyradiomics-3.0.1.tar.gz", "sha256":
                               "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"}]


# ---------------------------------------------------------------------- downloads
def cache_dir(name=None):
    """The folder of downloaded datasets (``$KERAS_UNET_DATA``, else
    ``~/.keras/datasets/keras_unet``); with ``name``, that dataset's :data:`FOLDERS` in it."""
    root = Path(os.environ.get("KERAS_UNET_DATA") or "~/.keras/datasets/keras_unet").expanduser()
    return root / FOLDERS.get(name, name) if name else root


def _get_file(url, checksum, algorithm, staging, quiet, unpack=None):
    """``keras.utils.get_file`` of ``url`` into ``staging`` (checked), or (``unpack``) that
    file unpacked there; returns the file or folder. ``quiet``: no Keras bar."""
    import keras  # here only: reading data must not start a Keras backend

    timeout, loud = socket.getdefaulttimeout(), keras.config.is_interactive_logging_enabled()
    socket.setdefaulttimeout(TIMEOUT)
    if quiet:
        keras.config.disable_interactive_logging()
    try:
        return Path(keras.utils.get_file(
            "download.part", url, file_hash=None if unpack else checksum,
            hash_algorithm=algorithm, cache_dir=staging, cache_subdir="", extract=bool(unpack),
            archive_format=unpack or "auto"))  # unpacked into download_extracted/
    except ValueError:  # get_file's "file hash does not match"
        actual = hashlib.new(algorithm)
        with open(staging / "download.part", "rb") as part:
            for chunk in iter(lambda: part.read(1 << 20), b""):
                actual.update(chunk)
        raise DownloadError(
            f"checksum mismatch for {url}: expected {algorithm.upper()} {checksum}, got "
            f"{actual.hexdigest()}. The file was deleted; if the server's file changed, update "
            f"the registry (keras_unet.datasets.REGISTRY)") from None
    except tarfile.TarError as error:  # tarfile's "data" filter
        raise ValueError(f"unsafe archive {url}: {error}; nothing was kept") from None
    except Exception as error:  # get_file re-raises urllib's errors as Exception
        cause = error.__context__ if type(error) is Exception else error
        if not isinstance(cause, urllib.error.HTTPError):
            cause = getattr(cause, "reason", None) or cause
        raise DownloadError(f"could not download {url}: {cause}") from error
    finally:
        socket.setdefaulttimeout(timeout)
        if quiet and loud:
            keras.config.enable_interactive_logging()


def _leaves_root(name):
    """Whether the archive path ``name`` points outside the archive's root."""
    path = posixpath.normpath(name.replace("\\", "/"))
    return path.startswith("/") or path.split("/")[0] == ".." or bool(PureWindowsPath(name).drive)


def _refuse_unsafe(archive, kind, url):
    """Raise ValueError if a member of ``archive`` would land outside the folder it is
    unpacked into (a path or a link pointing out), or if it is no ``kind`` archive."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as opened:
                members = [(name, None, "") for name in opened.namelist()]
        else:
            with tarfile.open(archive) as opened:  # a symlink is relative to its folder
                members = [(m.name, m.linkname if m.linkname else None,
                            posixpath.dirname(m.name) if m.issym() else "")
                           for m in opened.getmembers()]
    except (tarfile.TarError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot unpack {url} as a {kind} archive: {error}") from None
    for name, link, base in members:
        if _leaves_root(name) or (link is not None and _leaves_root(posixpath.join(base, link))):
            where = f"{name} -> {link}" if link else name
            raise ValueError(f"unsafe archive {url}: the member {where!r} would land outside "
                             f"the folder it is extracted to; nothing was extracted")


def download(url, checksum, path, *, progress=True, unpack=None, algorithm="sha256"):
    """Download ``url`` (its SHA-256 ``checksum`` checked; an MD5 with ``algorithm="md5"``) to
    ``path``, or (``unpack``: ``"tar"``, ``"zip"``) unpack it into the folder ``path``, whole or
    not at all. Unsafe archive: ValueError; HTTP error, cut transfer, bad checksum: DownloadError.

    Example:
        >>> import hashlib, tempfile
        >>> source = Path(tempfile.mkdtemp()) / "source.txt"
        >>> _ = source.write_bytes(b"cells")
        >>> download(source.as_uri(), hashlib.sha256(b"cells").hexdigest(),
        ...          source.with_name("copy.txt"), progress=False).read_bytes()
        b'cells'
    """
    path, checksum = Path(path), str(checksum).lower()
    digits = 2 * hashlib.new(check_choice(algorithm, ("sha256", "md5"), "algorithm")).digest_size
    if len(checksum) != digits or set(checksum) - set("0123456789abcdef"):
        fail(f"the {algorithm.upper()} checksum of {url}", f"{digits} hex digits", checksum)
    folder = path if check_choice(unpack, (None, *ARCHIVE_KINDS), "unpack") else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as staging:
        archive = _get_file(url, checksum, algorithm, Path(staging), not progress)
        if unpack is None:
            return archive.replace(path)
        _refuse_unsafe(archive, unpack, url)
        unpacked = _get_file(url, checksum, algorithm, Path(staging), True, unpack)
        for item in sorted(unpacked.iterdir()):
            destination = path / item.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.is_symlink() or destination.exists():
                destination.unlink()
            os.replace(item, destination)
    return path


def _source(name):
    """``(base URL, entries)`` of dataset ``name``: the built-in :data:`REGISTRY`, or
    the file named by ``$KERAS_UNET_REGISTRY`` where that file lists the dataset."""
    override = os.environ.get("KERAS_UNET_REGISTRY")
    if override:
        try:
            listed = json.loads(Path(override).read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"KERAS_UNET_REGISTRY={override}: cannot read it as JSON "
                             f"({error})") from None
        for own in set(listed) - set(REGISTRY):  # a misspelt name would download the real one
            check_choice(own, sorted(REGISTRY), f"KERAS_UNET_REGISTRY={override}: a dataset")
        if name in listed:
            if not (isinstance(listed[name], dict) and {"base_url", "files"} <= set(listed[name])):
                raise ValueError(f"KERAS_UNET_REGISTRY={override}: {name!r} must map to "
                                 f'{{"base_url": ..., "files": [...]}}')
            return listed[name]["base_url"], listed[name]["files"]
    return BASE_URLS[name], REGISTRY[name]


def fetch(name, *, progress=True):
    """Download the dataset ``name`` of :data:`REGISTRY` into ``cache_dir(name)`` once (resumed
    after an interruption, under a lock) and return the folder. ``$KERAS_UNET_REGISTRY`` may
    replace a source: docs/datasets.md. Raises as :func:`download`, ValueError for a bad name.

    Example:
        >>> len(REGISTRY), len(REGISTRY["isbi2012"]), REGISTRY["Task04_Hippocampus"][0]["md5"]
        (13, 90, '9d24dba78a72977dbd1d2e110310f31b')
    """
    check_choice(name, sorted(REGISTRY), "name")
    folder = cache_dir(name)
    if (folder / COMPLETE).exists():
        return folder
    with locked(folder.parent / f".{folder.name}.lock"):
        if (folder / COMPLETE).exists():  # another process finished it while we waited
            return folder
        import keras  # here only: reading data must not start a Keras backend
        base_url, entries = _source(name)
        # many small files (ISBI's 90 PNGs): one bar counting files, not a bar each
        per_file = progress and len(entries) > 1 and all(e["kind"] == "file" for e in entries)
        if per_file:
            print(f"Downloading {name}: {len(entries)} files")
            bar = keras.utils.Progbar(len(entries), unit_name="file", interval=1.0)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for done, entry in enumerate(entries, start=1):
                kind = check_choice(entry["kind"], ("file", *ARCHIVE_KINDS), "an entry's kind")
                unpack = None if kind == "file" else kind
                marker = folder / (f".{entry['filename']}.extracted" if unpack
                                   else entry["filename"])
                if not marker.exists():
                    algorithm = "md5" if "md5" in entry and "sha256" not in entry else "sha256"
                    download(base_url + entry["url"], entry.get(algorithm), folder if unpack
                             else marker, progress=progress and not per_file, unpack=unpack,
                             algorithm=algorithm)
                    marker.touch()
                if per_file:
                    bar.update(done)
        except BaseException:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing was kept
            raise
        if name in PREPARE:  # the source's files into the layout data/README.md describes
            PREPARE[name](folder)
        (folder / COMPLETE).touch()
    return folder


# ------------------------------------------------------------------ ISBI 2012 EM
def _require(folder, entries, dataset):
    missing = [e for e in entries if not (Path(folder) / e).exists()]
    if missing:
        raise ValueError(f"data_dir {folder} is not a {dataset} folder: it lacks "
                         f"{', '.join(missing)}")


def _rows(path):  # a CSV file's rows as dicts
    try:
        with open(path, newline="") as file:
            return list(csv.DictReader(file))
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def load_isbi2012(data_dir=None):
    """ISBI 2012 EM: 30 training slices with masks (1 = cell interior, 0 = membrane) and 30
    test slices without (masks None), 512x512 gray float32. ``data_dir``: a copy with
    ``images/``, ``masks/`` and ``test_images/`` (None: :func:`fetch`, about 20 MB).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for folder in ("images", "masks", "test_images"):
        ...     (root / folder).mkdir()
        ...     Image.fromarray(np.full((8, 8), 255, np.uint8)).save(root / folder / "00.png")
        >>> train, test = load_isbi2012(root)
        >>> train.images.shape, float(train.masks.mean()), test.masks, test.names
        ((1, 8, 8, 1), 1.0, None, ['00'])
    """
    folder = Path(data_dir) if data_dir is not None else fetch("isbi2012")
    _require(folder, ("images", "masks", "test_images"), "ISBI 2012")
    train = from_folder(folder / "images", folder / "masks", mask_mode="binary")
    files = image_files(folder / "test_images", "test_images")
    return train, Split(stack_or_list([read_image(p) for p in files.values()]), None, list(files))


# -------------------------------------------------------------------------- DRIVE
def _one_file(folder, stem):
    """The file ``folder/stem.*``."""
    found = sorted(Path(folder).glob(f"{stem}.*"))
    if len(found) != 1:
        raise ValueError(f"expected one file {folder / stem}.* ; found {len(found)}")
    return found[0]


def _drive_split(triples):
    """A :class:`Split` from ``[(name, image, vessel mask or None, fov mask)]`` paths."""
    columns = ([], [], [])
    for _, image_path, *mask_paths in triples:
        columns[0].append(image := read_image(image_path))
        for column, path in zip(columns[1:], mask_paths):
            if path is not None:
                column.append(read_mask(path, "binary"))
                check_same_size(image, column[-1], image_path, path)
    images, masks, fovs = (stack_or_list(column) if column else None for column in columns)
    return Split(images, masks, [name for name, *_ in triples], fovs)


def _drive_files(folder, flat, split):
    """``[(name, image, vessels, fov)]`` of ``split`` (``"train"``, ``"test"``): the flat layout
    (``splits.csv``) or DRIVE's own (``training/``, ``test/``), as in docs/datasets.md."""
    if flat:
        rows = _rows(folder / "splits.csv")
        if not rows or not {"filename", "split"} <= set(rows[0]):
            raise ValueError(f"{folder / 'splits.csv'} must have the columns filename,split")
        if not (files := [row["filename"] for row in rows if row["split"] == split]):
            raise ValueError(f"{folder / 'splits.csv'} lists no {split!r} files")
        return [(Path(f).stem, *(folder / sub / f for sub in ("images", "masks", "fov_masks")))
                for f in files]
    sub = "training" if split == "train" else split
    folder = folder / sub
    if not (images := sorted((folder / "images").glob(f"*_{sub}.*"))):
        raise ValueError(f"{folder / 'images'} holds no *_{sub}.tif images")
    has_manual = (folder / "1st_manual").is_dir()
    if sub == "training" and not has_manual:
        raise ValueError(f"{folder} lacks 1st_manual/ (the vessel masks)")
    names = [image.stem.split("_")[0] for image in images]
    return [(name, image, _one_file(folder / "1st_manual", f"{name}_manual1") if has_manual
             else None, _one_file(folder / "mask", f"{name}_{sub}_mask"))
            for name, image in zip(names, images)]


def load_drive(data_dir=None):
    """DRIVE: 40 retinal photographs (565x584) with vessel masks (1 = vessel) and field-of-view
    masks ``fov`` (1 = inside), split 21-40 train, 01-20 test; never downloaded (registration).
    ``data_dir``: DRIVE's own layout (test vessels may lack: None) or the flat one with
    ``splits.csv`` (docs/datasets.md); None: ``cache_dir("drive")``, else FileNotFoundError.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for folder in ("images", "masks", "fov_masks"):
        ...     (root / folder).mkdir()
        ...     for name in ("01.png", "21.png"):
        ...         Image.fromarray(np.full((4, 5), 255, np.uint8)).save(root / folder / name)
        >>> _ = (root / "splits.csv").write_text("filename,split\\n01.png,test\\n21.png,train\\n")
        >>> train, test = load_drive(root)
        >>> train.names, test.names, train.images.shape, train.fov.shape
        (['21'], ['01'], (1, 4, 5, 1), (1, 4, 5, 1))
    """
    folder = Path(data_dir) if data_dir is not None else cache_dir("drive")
    flat = (folder / "splits.csv").is_file()
    for root in (folder,) if flat else (folder, folder / "DRIVE"):
        if flat or (root / "training").is_dir() and (root / "test").is_dir():
            return tuple(_drive_split(_drive_files(root, flat, s)) for s in ("train", "test"))
    if data_dir is None:
        raise FileNotFoundError(
            f"DRIVE is not downloaded automatically: its owners hand it out after registration "
            f"at https://drive.grand-challenge.org/. Download the training and test archives, "
            f"then unpack them into {folder} (training/ and test/) or pass data_dir= the "
            f"folder holding them (docs/datasets.md). KERAS_UNET_DATA moves the cache folder.")
    raise ValueError(f"data_dir {folder} holds no DRIVE copy: expected training/ and test/ (or "
                     f"DRIVE/training/ and DRIVE/test/), or splits.csv with images/, masks/ "
                     f"and fov_masks/")


# -------------------------------------------------------------------- Oxford pets
#: Oxford-IIIT Pet trimap values 1 (pet), 2 (background), 3 (border) -> classes.
PET_CLASSES = {"background": 0, "pet": 1, "border": 2}
_TRIMAP_TO_CLASS = np.array([-1, 1, 0, 2], np.int32)


def _pet_names(path):
    """The image names of an Oxford pets list file (``name class species breed``)."""
    if not path.is_file():
        raise ValueError(f"{path} is missing: data_dir must hold annotations/{path.name}")
    lines = path.read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def _resize(array, size, nearest):
    """``array`` (H, W, C) resized to ``size = (height, width)``."""
    if nearest:  # pixel centres
        rows, cols = (((np.arange(new) + 0.5) * old / new).astype(int)
                      for new, old in zip(size, array.shape))
        return array[rows][:, cols]
    channels = [np.asarray(Image.fromarray(array[..., c]).resize(size[::-1], Image.BILINEAR))
                for c in range(array.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0, 1)


def _read_pet(folder, name, image_size):
    image = read_image(folder / "images" / f"{name}.jpg")
    trimap = read_mask(folder / "annotations" / "trimaps" / f"{name}.png", "multiclass")
    check_same_size(image, trimap, f"{name}.jpg", f"{name}.png")
    if trimap.min() < 1 or trimap.max() > 3:
        raise ValueError(f"trimap {name}.png has values outside 1, 2, 3")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    mask = _TRIMAP_TO_CLASS[trimap]
    if image_size is not None:
        image, mask = _resize(image, image_size, False), _resize(mask, image_size, True)
    return image, mask


def _pets_split(folder, list_name, image_size):
    pets, skipped = [], []
    for name in _pet_names(folder / "annotations" / list_name):
        try:
            pets.append((name, *_read_pet(folder, name, image_size)))
        except ValueError as error:  # named inside the dataset's folder: notebooks keep it
            skipped.append(f"{name} ({str(error).replace(f'{folder}{os.sep}', '')})")
    if skipped:
        warnings.warn(f"Oxford-IIIT Pet {list_name}: skipped {len(skipped)} unreadable "
                      f"image(s): " + "; ".join(skipped), stacklevel=3)
    if not pets:
        raise ValueError(f"no readable image listed in {folder / 'annotations' / list_name}")
    names, images, masks = zip(*pets)
    return Split(stack_or_list(images), stack_or_list(masks), list(names))


def load_oxford_pets(data_dir=None, *, image_size=None):
    """Oxford-IIIT Pet: 7349 cat and dog photos (float32 RGB), trimaps as int32 ``(h, w, 1)``
    classes (:data:`PET_CLASSES`); split ``trainval.txt``/``test.txt``; unreadable ones are
    skipped with a warning. ``data_dir``: the unpacked archives (None: :func:`fetch`, 810 MB).
    ``image_size``: ``(height, width)`` to resize to (stacked arrays; else lists).
    """
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            fail("image_size", "(height, width), positive integers", image_size)
        image_size = tuple(check_int(side, "image_size's height and width") for side in image_size)
    folder = Path(data_dir) if data_dir is not None else fetch("oxford_pets")
    _require(folder, ("images", "annotations/trimaps"), "Oxford-IIIT Pet")
    return tuple(_pets_split(folder, n, image_size) for n in ("trainval.txt", "test.txt"))


# ---------------------------------------------------- Medical Segmentation Decathlon


def _msd_case(folder, entry, modalities, n_classes, intensities):  # (image, mask, name, spacing)
    image_path, label_path = (folder / entry[key] for key in ("image", "label"))
    volume, label = read_volume(image_path), read_volume(label_path)
    channels = volume.array if volume.array.ndim == 4 else volume.array[..., None]
    if channels.shape[-1] != len(modalities) or label.array.shape != channels.shape[:3]:
        raise ValueError(f"{image_path} {channels.shape} and its mask {label_path} "
                         f"{label.array.shape} must share a grid, the image with "
                         f"{count(modalities, 'modality')} as channels (dataset.json)")
    image = np.stack([normalize_intensity(channels[..., m], intensity, name=str(image_path))
                      for m, intensity in enumerate(intensities)], axis=-1)
    mask = as_mask(label.array, str(label_path), "multiclass", n_classes=n_classes, spatial_dims=3)
    return image, mask, file_stem(image_path), volume.spacing


def load_msd(task, data_dir=None, *, intensity=None, max_cases=None):
    """A Medical Segmentation Decathlon task (:data:`MSD_TASKS`): ``(train, test)`` Splits of
    float32 ``(D, H, W, modalities)`` images, int32 ``(D, H, W, 1)`` class masks and ``spacing``;
    test: every fifth case of dataset.json's training list (the 1st, 6th, ...). ``intensity``:
    None, by modality (CT: :data:`MSD_WINDOWS`, else "abdomen"; MRI: z-score per channel), else
    ``normalize_intensity``'s. ``max_cases``: the first only. ``data_dir``: the unpacked task or
    its parent (None: :func:`fetch`).

    Example:
        >>> sorted(MSD_TASKS)[:2], REGISTRY["Task09_Spleen"][0]["md5"], MSD_WINDOWS["Task06_Lung"]
        (['Task01_BrainTumour', 'Task02_Heart'], '410d4a301da4e5b2f6f86ec3ddba524e', 'lung')
    """
    check_choice(task, sorted(MSD_TASKS), "task")
    max_cases = None if max_cases is None else check_int(max_cases, "max_cases")
    root = Path(data_dir) if data_dir is not None else fetch(task)
    folder = root / task if (root / task / "dataset.json").is_file() else root
    _require(folder, ("dataset.json",), task)
    try:  # the training list, never macOS's ._ files
        info = json.loads((folder / "dataset.json").read_text())
        modalities = [info["modality"][key] for key in sorted(info["modality"], key=int)]
        entries = [e for e in info["training"] if not Path(e["image"]).name.startswith("._")]
        n_classes = len(info["labels"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{folder / 'dataset.json'} is no Decathlon dataset.json (modality, "
                         f"labels, training of image and label): {error!r}") from None
    intensities = [intensity or (MSD_WINDOWS.get(task, "abdomen") if m.upper() == "CT" else
                                 "zscore") for m in modalities]
    cases = [_msd_case(folder, e, modalities, n_classes, intensities) for e in entries[:max_cases]]
    return tuple(Split(stack_or_list([c[0] for c in part]), stack_or_list([c[1] for c in part]),
                       [c[2] for c in part], None, [c[3] for c in part])
                 for part in ([c for i, c in enumerate(cases) if i % 5], cases[::5]))


# ------------------------------------ chest X-rays, liver and kidney CT, tumour volumes
#: The class indices of the chest X-ray masks (1 = the patient's left lung, on the image's right).
LUNG_CLASSES = ("background", "left_lung", "right_lung", "cardiomediastinum")
#: The class indices of the kidney CT masks.
KIDNEY_CLASSES = ("background", "kidney", "tumour")
TEST_SHARE, SPLIT_SEED = 0.2, 2015  # the test patients where no splits.csv names them


def patients(folder):
    """``{stem: patient}`` from ``folder/cases.csv`` (a volume's case is its own patient).

    Example:
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "cases.csv").write_text("stem,patient\\na_1,7\\na_2,7\\n")
        >>> patients(root)
        {'a_1': '7', 'a_2': '7'}
    """
    rows = _rows(Path(folder) / "cases.csv")
    key = "stem" if rows and "stem" in rows[0] else "case"
    return {row[key]: row.get("patient", row[key]) for row in rows}


def _by_patient(folder, test_patients):  # (train stems, test stems), patient-wise
    owner = patients(folder)
    every = sorted(set(owner.values()), key=lambda p: (len(p), p))
    if test_patients is None and (folder / "splits.csv").is_file():
        test = {row["patient"] for row in _rows(folder / "splits.csv") if row["split"] == "test"}
    elif test_patients is None:
        test = set(random.Random(SPLIT_SEED).sample(every, max(1, round(TEST_SHARE * len(every)))))
    else:
        test = {str(p) for p in ([test_patients] if isinstance(test_patients, (str, int))
                                 else test_patients)}
        if test - set(every):
            fail("test_patients", f"patients of {folder} ({', '.join(every)})",
                 sorted(test - set(every)))
    return ([s for s in sorted(owner) if (owner[s] in test) == held] for held in (False, True))


def _folder(data_dir, name):  # data_dir, else the download, else why there is none
    if data_dir is None and name not in REGISTRY:
        raise ValueError(f"{name} has no download source in this version: pass data_dir=, a "
                         f"copy laid out as data/README.md says (e.g. $KERAS_UNET_DATA_DIR/{name})")
    return Path(data_dir) if data_dir is not None else fetch(name)


def _class_mask(path, n_classes):  # a class-index PNG whose values are below n_classes
    return as_mask(read_mask(path, "multiclass"), str(path), "multiclass", n_classes=n_classes)


def _slices(data_dir, name, test_patients, read_mask_of):  # a 2D dataset's (train, test)
    folder = _folder(data_dir, name)
    _require(folder, ("images", "masks", "cases.csv"), name)
    splits = []
    for stems in _by_patient(folder, test_patients):
        images = [read_image(_one_file(folder / "images", s)) for s in stems]
        masks = [read_mask_of(folder, s) for s in stems]
        for image, mask, stem in zip(images, masks, stems):
            check_same_size(image, mask, folder / "images" / stem, folder / "masks" / stem)
        splits.append(Split(stack_or_list(images), stack_or_list(masks), stems))
    return tuple(splits)


def load_lung_cxr(data_dir=None, *, multilabel=False, test_patients=None):
    """Chest X-rays (sizes vary): lists of float32 ``(H, W, 1)`` images and int32 class masks
    (:data:`LUNG_CLASSES`; the cardiomediastinum wins where it overlaps a lung) or, with
    ``multilabel``, float32 ``(H, W, 3)`` 0/1 masks of the complete left lung, right lung and
    cardiomediastinum (``labels/``; they overlap). Split by patient: ``test_patients``
    (None: 20% drawn with seed 2015). ``data_dir``: the folder (no download yet)."""
    def mask(folder, stem):
        if multilabel:
            return np.concatenate([read_mask(folder / "labels" / f"{stem}_{name}.png", "binary")
                                   for name in LUNG_CLASSES[1:]], axis=-1)
        return _class_mask(folder / "masks" / f"{stem}.png", len(LUNG_CLASSES))
    return _slices(data_dir, "lung_cxr", test_patients, mask)


def load_liver_ct(data_dir=None, *, test_patients=None):
    """Liver CT slices (MSD Task03, 256x256, grey = the voxel value clipped to 0-255, NIfTI
    array orientation): float32 images and 0/1 liver masks; test: ``splits.csv``'s 24 patients,
    or ``test_patients``. ``data_dir``: the folder (no download yet)."""
    return _slices(data_dir, "liver_ct", test_patients, lambda folder, stem: read_mask(
        folder / "masks" / f"{stem}.png", "binary"))


def load_kidney_tumour_ct(data_dir=None, *, test_patients=None):
    """Kidney CT slices (KiTS19, 512x512): float32 images and int32 masks of
    :data:`KIDNEY_CLASSES`; split by patient as :func:`load_lung_cxr` (five patients: pass
    ``test_patients`` for a leave-one-patient-out). ``data_dir``: the folder (no download yet)."""
    return _slices(data_dir, "kidney_tumour_ct", test_patients, lambda folder, stem: _class_mask(
        folder / "masks" / f"{stem}.png", len(KIDNEY_CLASSES)))


def load_tumour_volumes(data_dir=None, *, test_patients=None, intensity=None):
    """The five tumour volumes (brain and breast MRI, lung CT; NIfTI): float32 ``(D, H, W, 1)``
    images (``intensity`` None: CT the "lung" window, MRI a z-score; else
    ``normalize_intensity``'s), 0/1 float32 tumour masks and ``spacing``; test: one case drawn
    with seed 2015, or ``test_patients`` (case names). ``data_dir``: the folder, else the download
    (pyradiomics 3.0.1 from PyPI, 34 MB, converted once into the cache)."""
    folder = _folder(data_dir, "tumour_volumes")
    _require(folder, ("cases.csv",), "tumour_volumes")
    modality = {row["case"]: row["modality"] for row in _rows(folder / "cases.csv")}
    splits = []
    for cases in _by_patient(folder, test_patients):
        scans = [(read_volume(folder / f"{c}_image.nii.gz"), read_volume(
            folder / f"{c}_label.nii.gz")) for c in cases]
        images = [normalize_intensity(image.array, intensity or (
            "lung" if modality[c].upper().startswith("CT") else "zscore"), name=c)[..., None]
            for c, (image, _) in zip(cases, scans)]
        masks = [as_mask(label.array, f"{c}_label.nii.gz", "binary", spatial_dims=3)
                 for c, (_, label) in zip(cases, scans)]
        splits.append(Split(stack_or_list(images), stack_or_list(masks), cases, None,
                            [image.spacing for image, _ in scans]))
    return tuple(splits)


def _volumes_from_sdist(folder):
    """The sdist's ``data/<case>_{image,label}.nrrd`` as ``<case>_{image,label}.nii.gz`` (int16
    stored values, uint8 labels; the NRRD's LPS geometry as a RAS affine) and ``cases.csv`` (mm
    as NIfTI holds them, float32), byte for byte as data/README.md's copy; then the unpacked
    sdist is removed."""
    sdist, rows = folder / "pyradiomics-3.0.1", []
    for case, (modality, source) in TUMOUR_CASES.items():
        for part, dtype, note in (("image", np.int16, ""), ("label", np.uint8, " label 1=tumour")):
            volume = read_volume(sdist / "data" / f"{case}_{part}.nrrd")
            nifti = nibabel.Nifti1Image(volume.array.T.astype(dtype), volume.affine)
            nifti.set_qform(volume.affine, 1)
            nifti.set_sform(volume.affine, 1)
            nifti.header.set_xyzt_units("mm")
            nifti.header["descrip"] = f"pyradiomics 3.0.1 data/{case}_{part}.nrrd{note}"
            payload = gzip.compress(nifti.to_bytes(), 9, mtime=0)
            write_atomically(folder / f"{case}_{part}.nii.gz", lambda file: file.write(payload))
        spacing, voxels = volume.spacing[::-1], int(np.count_nonzero(volume.array))
        rows.append([case, modality, "x".join(map(str, volume.array.shape[::-1])), "x".join(
            np.format_float_positional(np.float32(s), trim="-") for s in spacing), voxels,
            f"{voxels * np.prod(spacing) / 1000:.3f}", source])
    write_atomically(folder / "cases.csv", lambda file: file.write("".join(
        ",".join(map(str, row)) + "\n" for row in [["case", "modality", "shape", "spacing_mm",
        "tumour_voxels", "tumour_ml", "source"], *rows]).encode()))
    shutil.rmtree(sdist)


#: What turns a download into the layout data/README.md describes, where the source differs.
PREPARE = {"tumour_volumes": _volumes_from_sdist}


# ------------------------------------------------------- synthetic cells and volumes
#: Mean distance in pixels between the centres of neighbouring synthetic cells.
CELL_SPACING = 32
#: Smaller pieces of a synthetic cell (in pixels, cut off by a bent border) become membrane.
MIN_CELL_AREA = 16
#: The pixel neighbourhood of a cell: 4-connectivity in 2D.
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _smooth_noise(rng, shape, sigma):
    """Smooth random field of unit standard deviation and ``shape``, ``sigma`` (per axis) wide;
    wide ones are made at a lower resolution and zoomed (same look, a fraction of the time)."""
    sigma = np.broadcast_to(np.asarray(sigma, float), len(shape))
    step = np.maximum(1, sigma // 2).astype(int)
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(-(-np.array(shape) // step))),
                                    sigma / step, mode="wrap")
    if (step > 1).any():
        field = ndimage.zoom(field, step, order=1, grid_mode=True,
                             mode="grid-wrap")[tuple(map(slice, shape))]
    return field / field.std()


def _cell_labels(rng, size):
    """Cells tiling the image: a Voronoi diagram of jittered grid points, seen
    through a smooth random warp so the borders bend. Labels 1..k, int32."""
    grid = max(2, round(size / CELL_SPACING))
    centres = np.stack(np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij"), -1)
    centres = (centres.reshape(-1, 2) + 0.5 + rng.uniform(-0.4, 0.4, (grid**2, 2))) * size / grid
    keep = rng.random(grid**2) < 0.85  # some cells merge: sizes vary
    keep[:2] = True
    shift = size / grid / 6
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    yy += shift * _smooth_noise(rng, (size, size), size / grid / 2)
    xx += shift * _smooth_noise(rng, (size, size), size / grid / 2)
    _, nearest = spatial.cKDTree(centres[keep]).query(np.stack([yy.ravel(), xx.ravel()], -1))
    return nearest.reshape(size, size).astype(np.int32) + 1


def _membranes(rng, labels):
    """Borders between cells, 1 to 3 pixels wide, separating them under 4-connectivity;
    slivers of cell smaller than ``MIN_CELL_AREA`` become membrane too."""
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    thick = ndimage.binary_dilation(edge, _FOUR_CONNECTED)
    membrane = edge | (thick & (_smooth_noise(rng, labels.shape, 6) > rng.uniform(-0.5, 0.5)))
    cells, _ = ndimage.label(~membrane, _FOUR_CONNECTED)
    return membrane | (np.bincount(cells.ravel()) < MIN_CELL_AREA)[cells]


def _cell_image(rng, labels, membrane):
    """EM-like picture: textured cells of varied brightness with a few dark vesicles,
    dark membranes, blur and noise."""
    size = labels.shape[0]
    brightness = rng.uniform(0.55, 0.85, labels.max() + 1)
    image = brightness[labels] + 0.05 * _smooth_noise(rng, labels.shape, 2)
    spots = np.zeros((size, size))
    spots.flat[rng.integers(0, size * size, size * size // 1500)] = 1
    image -= 0.25 * ndimage.gaussian_filter(spots, 2) * (2 * np.pi * 4)
    image[membrane] = rng.uniform(0.1, 0.2) + 0.05 * rng.standard_normal(membrane.sum())
    image = ndimage.gaussian_filter(image, rng.uniform(0.7, 1.0))
    image += rng.normal(0, 0.04, image.shape)
    return np.clip(image, 0, 1)


def synthetic_cells(n, size=256, seed=0):
    """``n`` synthetic EM-like ``size`` x ``size`` images (``size`` >= 32) of cells parted by
    dark membranes, like ISBI 2012 without a download (data/README.md); one ``seed``, the same
    first images. Returns float32 images ``(n, size, size, 1)``, masks (1 = cell interior) and
    int32 labels ``(n, size, size)`` (the mask's 4-connected cells 1..k).

    Example:
        >>> images, masks, labels = synthetic_cells(2, size=64, seed=0)
        >>> images.shape, masks.dtype, labels.dtype
        ((2, 64, 64, 1), dtype('float32'), dtype('int32'))
    """
    n, size = check_int(n, "n"), check_int(size, "size", 32)
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 1), np.float32)
    masks = np.empty((n, size, size, 1), np.float32)
    labels = np.empty((n, size, size), np.int32)
    for i in range(n):
        cells = _cell_labels(rng, size)
        membrane = _membranes(rng, cells)
        images[i, ..., 0] = _cell_image(rng, cells, membrane)
        masks[i, ..., 0] = ~membrane
        labels[i] = ndimage.label(~membrane, _FOUR_CONNECTED)[0]
    return images, masks, labels


def load_synthetic(data_dir=None, *, n=64, n_test=4, size=256, seed=0):
    """:func:`synthetic_cells` as a loader (``data_dir`` must be None): ``(train, test)``
    :class:`Split` s of ``n`` and ``n_test`` images named "00", "01", ...; the train images
    are ``synthetic_cells(n, size, seed)``'s, the test ones the next of that seed.

    Example:
        >>> train, test = load_synthetic(n=2, n_test=1, size=32)
        >>> train.images.shape, test.masks.shape, test.names
        ((2, 32, 32, 1), (1, 32, 32, 1), ['02'])
    """
    if data_dir is not None:
        fail("data_dir", "None for synthetic cells (they are made, not read)", data_dir)
    check_int(n_test, "n_test")
    images, masks, _ = synthetic_cells(check_int(n, "n") + n_test, size, seed)
    names = [f"{i:02d}" for i in range(n + n_test)]
    return (Split(images[:n], masks[:n], names[:n]), Split(images[n:], masks[n:], names[n:]))


def synthetic_volumes(n, shape=(32, 64, 64), spacing=(3.0, 1.0, 1.0), seed=0):
    """``n`` noisy volumes ``shape`` (D, H, W) with 1-3 bright lumpy blobs, round in mm (so, on a
    grid of ``spacing`` mm per axis, flat in voxels along axis 0); float32 images ``(n, D, H, W,
    1)`` in [0, 1] and masks (1 = blob). A seed's first volumes do not depend on ``n``.

    Example:
        >>> images, masks = synthetic_volumes(2, shape=(16, 32, 32), spacing=(2.0, 1.0, 1.0))
        >>> images.shape, masks.dtype, round(float(masks.mean()), 3)
        ((2, 16, 32, 32, 1), dtype('float32'), 0.055)
    """
    if not all(isinstance(value, (tuple, list)) and len(value) == 3 for value in (shape, spacing)):
        fail("shape and spacing", "3 values each, one per axis (D, H, W)", (shape, spacing))
    n, shape = check_int(n, "n"), tuple(check_int(side, "shape's sides", 4) for side in shape)
    spacing = np.array([check_number(s, "spacing's values", 0, open_low=True) for s in spacing])
    extent, rng = np.array(shape) * spacing, np.random.default_rng(seed)
    grid = np.ix_(*[(np.arange(side) + 0.5) * step for side, step in zip(shape, spacing)])
    images, masks = np.empty((n, *shape, 1), np.float32), np.zeros((n, *shape, 1), np.float32)
    for i in range(n):
        lumps, level = _smooth_noise(rng, shape, 4 / spacing), np.full(shape, 0.3)
        for _ in range(rng.integers(1, 4)):
            radius = rng.uniform(0.08, 0.2) * extent.min()
            centre = rng.uniform(low := np.minimum(radius, extent / 2), extent - low)
            distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre))) / radius
            masks[i, ..., 0][blob := distance < 1 - 0.2 * lumps] = 1
            np.maximum(level, np.where(blob, 0.3 + rng.uniform(0.25, 0.4), 0), out=level)
        image = ndimage.gaussian_filter(level, 0.7 / spacing) + rng.normal(0, 0.05, shape)
        images[i, ..., 0] = np.clip(image, 0, 1)
    return images, masks


def load_synthetic3d(data_dir=None, *, n=8, n_test=2, shape=(32, 64, 64), spacing=(3.0, 1.0, 1.0),
                     seed=0):
    """:func:`synthetic_volumes` as a loader (``data_dir`` must be None) like
    :func:`load_synthetic`, with ``spacing``: ``(train, test)`` :class:`Split` s.

    Example:
        >>> train, test = load_synthetic3d(n=2, n_test=1, shape=(8, 16, 16))
        >>> train.images.shape, test.names, test.spacing
        ((2, 8, 16, 16, 1), ['02'], [(3.0, 1.0, 1.0)])
    """
    if data_dir is not None:
        fail("data_dir", "None for synthetic volumes (they are made, not read)", data_dir)
    check_int(n_test, "n_test")
    images, masks = synthetic_volumes(check_int(n, "n") + n_test, shape, spacing, seed)
    names, spacings = [f"{i:02d}" for i in range(n + n_test)], [tuple(map(float, spacing))]
    return tuple(Split(images[part], masks[part], names[part], None, spacings * len(names[part]))
                 for part in (slice(None, n), slice(n, None)))


#: The datasets by name, each ``loader(data_dir=None, ...) -> (train, test)``.
LOADERS = {"isbi2012": load_isbi2012, "drive": load_drive, "oxford_pets": load_oxford_pets,
           "lung_cxr": load_lung_cxr, "liver_ct": load_liver_ct,
           "kidney_tumour_ct": load_kidney_tumour_ct, "tumour_volumes": load_tumour_volumes,
           "synthetic": load_synthetic, "synthetic3d": load_synthetic3d}
