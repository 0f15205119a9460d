"""Where data comes from: the public datasets (downloaded once, checked, cached), synthetic
cells, and :data:`LOADERS`, the one list of dataset names (``isbi2012``, ``drive``,
``oxford_pets``, ``synthetic``). Each loader takes ``data_dir`` (a local copy; None: the
cache) and returns ``(train, test)`` :class:`Split` s in the convention of
:mod:`keras_unet.images`. Downloads go through ``keras.utils.get_file`` into
``cache_dir(name)``, whole or not at all, under a lock. Sources, terms, layouts and the
cache: docs/datasets.md and data/README.md.
"""

import contextlib
import csv
import hashlib
import json
import os
import posixpath
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import warnings
import zipfile
from importlib import resources
from pathlib import Path, PureWindowsPath

import numpy as np
from PIL import Image
from scipy import ndimage, spatial

from keras_unet.checks import check_choice, check_int, fail
from keras_unet.images import (Split, check_same_size, from_folder, image_files, locked,
                               read_image, read_mask, stack_or_list)

#: The marker file of a completely downloaded and unpacked dataset.
COMPLETE = ".complete"
#: Seconds without data after which a download is given up.
TIMEOUT = 60
#: The registry's archive kinds, unpacked into the dataset's folder.
ARCHIVE_KINDS = ("tar", "zip")
#: A dataset's folder (in the cache and in a data folder) where it is not its name.
FOLDERS = {"isbi2012": "isbi2012_em"}


class DownloadError(OSError):
    """A download failed: HTTP error, connection cut, wrong checksum."""


# ----------------------------------------------------------------------- registry
def _isbi_entries():
    """ISBI 2012's files from the package's ``isbi2012.sha256`` (sha256sum's format):
    zhixuhao/unet's ``train/image/N.png`` is stored as ``images/NN.png``, and so on."""
    remote = {"images": "train/image", "masks": "train/label", "test_images": "test"}
    lines = resources.files("keras_unet").joinpath("isbi2012.sha256").read_text().splitlines()
    return [{"url": f"{remote[file.split('/')[0]]}/{int(Path(file).stem)}.png", "sha256": sha256,
             "filename": file, "kind": "file"} for sha256, file in map(str.split, lines)]


#: Where each downloadable dataset comes from; the registry's ``url`` values are
#: relative to these. Point one at a mirror (or a test server) to download from there.
BASE_URLS = {
    "isbi2012": "https://raw.githubusercontent.com/zhixuhao/unet/"
                "b45af4d458437d8281cc218a07fd4380818ece4a/data/membrane/",
    "oxford_pets": "https://www.robots.ox.ac.uk/~vgg/data/pets/data/",
}

#: Per dataset, the files to download: ``url`` (relative to ``BASE_URLS[name]``),
#: ``sha256``, ``filename`` (its place in the dataset's folder) and ``kind``: ``"file"``
#: is kept, ``"tar"`` and ``"zip"`` are unpacked into the folder. The Oxford pets
#: checksums are TensorFlow Datasets' (url_checksums/oxford_iiit_pet.txt).
REGISTRY = {
    "isbi2012": _isbi_entries(),
    "oxford_pets": [{"url": name, "sha256": sha256, "filename": name, "kind": "tar"}
                    for name, sha256 in {
        "images.tar.gz": "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        "annotations.tar.gz": "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
    }.items()],
}


# ---------------------------------------------------------------------- downloads
def cache_dir(name=None):
    """The folder of downloaded datasets, ``$KERAS_UNET_DATA`` if set, else
    ``~/.keras/datasets/keras_unet``; with ``name``, that dataset's folder in it (its
    :data:`FOLDERS` name: ``cache_dir("isbi2012")`` ends in ``isbi2012_em``)."""
    root = Path(os.environ.get("KERAS_UNET_DATA") or "~/.keras/datasets/keras_unet").expanduser()
    return root / FOLDERS.get(name, name) if name else root


def _get_file(url, sha256, staging, quiet, unpack=None):
    """``keras.utils.get_file`` of ``url`` into the folder ``staging``, the SHA-256 checked:
    the file; with ``unpack`` (a kind), that file, already there, unpacked: the folder. The
    connection times out; ``quiet`` sends Keras's messages and bar to absl's log."""
    import keras  # here only: reading data must not start a Keras backend

    timeout, loud = socket.getdefaulttimeout(), keras.config.is_interactive_logging_enabled()
    socket.setdefaulttimeout(TIMEOUT)
    if quiet:
        keras.config.disable_interactive_logging()
    try:
        return Path(keras.utils.get_file(
            "download.part", url, file_hash=None if unpack else sha256.lower(),
            hash_algorithm="sha256", cache_dir=staging, cache_subdir="", extract=bool(unpack),
            archive_format=unpack or "auto"))  # unpacked into download_extracted/
    except ValueError:  # get_file's "file hash does not match"
        actual = hashlib.sha256((staging / "download.part").read_bytes()).hexdigest()
        raise DownloadError(
            f"checksum mismatch for {url}: expected SHA-256 {sha256.lower()}, got {actual}. "
            f"The file was deleted; if the server's file changed, update the registry "
            f"(keras_unet.datasets.REGISTRY)") from None
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


def download(url, sha256, path, *, progress=True, unpack=None):
    """Download ``url`` with ``keras.utils.get_file`` (its SHA-256 checked) to ``path``, or
    with ``unpack`` (``"tar"``, ``"zip"``) unpack it into the folder ``path``. All lands in
    a temporary folder beside ``path`` and is moved into place once verified: nothing is
    half-written. An archive with a member that would land outside ``path`` (``..``, an
    absolute path, a link pointing out) is refused whole: a ValueError naming it. An HTTP
    or connection error, a cut-off transfer or a checksum mismatch (naming the URL and both
    checksums) is a :class:`DownloadError`.

    Example:
        >>> import hashlib, tempfile
        >>> source = Path(tempfile.mkdtemp()) / "source.txt"
        >>> _ = source.write_bytes(b"cells")
        >>> download(source.as_uri(), hashlib.sha256(b"cells").hexdigest(),
        ...          source.with_name("copy.txt"), progress=False).read_bytes()
        b'cells'
    """
    path = Path(path)
    folder = path if check_choice(unpack, (None, *ARCHIVE_KINDS), "unpack") else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as staging:
        archive = _get_file(url, sha256, Path(staging), not progress)
        if unpack is None:
            return archive.replace(path)
        _refuse_unsafe(archive, unpack, url)
        unpacked = _get_file(url, sha256, Path(staging), True, unpack)
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
    """Download the dataset ``name`` of :data:`REGISTRY` into ``cache_dir(name)``, once:
    a folder with the ``.complete`` marker is not fetched again, and files there from an
    interrupted run are kept. A lock file (``.<folder>.lock`` beside it) makes a second
    process wait, then find it complete. ``$KERAS_UNET_REGISTRY`` may name a JSON file
    ``{name: {"base_url": ..., "files": [entries like REGISTRY's]}}`` replacing a source
    (a mirror; the tests' loopback server): docs/datasets.md. Returns the folder; raises
    as :func:`download` does, and ValueError for an unknown ``name``.

    Example:
        >>> sorted(REGISTRY), len(REGISTRY["isbi2012"]), REGISTRY["isbi2012"][0]["url"]
        (['isbi2012', 'oxford_pets'], 90, 'train/image/0.png')
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
                    download(base_url + entry["url"], entry["sha256"], folder if unpack else marker,
                             progress=progress and not per_file, unpack=unpack)
                    marker.touch()
                if per_file:
                    bar.update(done)
        except BaseException:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing was kept
            raise
        (folder / COMPLETE).touch()
    return folder


# ------------------------------------------------------------------ ISBI 2012 EM
def _require(folder, entries, dataset):
    missing = [e for e in entries if not (Path(folder) / e).exists()]
    if missing:
        raise ValueError(f"data_dir {folder} is not a {dataset} folder: it lacks "
                         f"{', '.join(missing)}")


def load_isbi2012(data_dir=None):
    """The ISBI 2012 EM challenge data, the U-Net paper's first task: 30 training slices
    with masks and 30 test slices without, 512x512 gray. Mask 1 = cell interior, 0 =
    membrane (78% are 1; for "membrane = 1" use ``1 - masks``). Source: data/README.md.

    Args:
        data_dir: a copy with ``images/NN.png``, ``masks/NN.png`` (0/255) and
            ``test_images/NN.png``. None: :func:`fetch` it (about 20 MB, once).

    Returns:
        ``(train, test)`` :class:`Split` s, images and masks ``(30, 512, 512, 1)``
        float32; the test masks are None.

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
    """A :class:`Split` from ``[(name, image, mask or None, fov)]`` paths."""
    images, masks, fovs = [], [], []
    for _, image_path, mask_path, fov_path in triples:
        images.append(read_image(image_path))
        fovs.append(read_mask(fov_path, "binary"))
        check_same_size(images[-1], fovs[-1], image_path, fov_path)
        if mask_path is not None:
            masks.append(read_mask(mask_path, "binary"))
            check_same_size(images[-1], masks[-1], image_path, mask_path)
    return Split(stack_or_list(images), stack_or_list(masks) if masks else None,
                 [name for name, *_ in triples], stack_or_list(fovs))


def _drive_flat(folder):
    """The flat layout: ``images/``, ``masks/``, ``fov_masks/`` and ``splits.csv``."""
    with open(folder / "splits.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"filename", "split"} <= set(rows[0]):
        raise ValueError(f"{folder / 'splits.csv'} must have the columns filename,split")
    splits = []
    for split in ("train", "test"):
        files = [row["filename"] for row in rows if row["split"] == split]
        if not files:
            raise ValueError(f"{folder / 'splits.csv'} lists no {split!r} files")
        splits.append(_drive_split([(Path(f).stem, folder / "images" / f, folder / "masks" / f,
                                     folder / "fov_masks" / f) for f in files]))
    return tuple(splits)


def _drive_original(root):
    """DRIVE's own layout: ``training/`` and ``test/`` with ``images/NN_<split>.tif``,
    ``1st_manual/NN_manual1.gif`` (optional for test) and ``mask/NN_<split>_mask.gif``."""
    splits = []
    for sub in ("training", "test"):
        folder = root / sub
        images = sorted((folder / "images").glob(f"*_{sub}.*"))
        if not images:
            raise ValueError(f"{folder / 'images'} holds no *_{sub}.tif images")
        has_manual = (folder / "1st_manual").is_dir()
        if sub == "training" and not has_manual:
            raise ValueError(f"{folder} lacks 1st_manual/ (the vessel masks)")
        triples = []
        for image in images:
            name = image.stem.split("_")[0]
            manual = _one_file(folder / "1st_manual", f"{name}_manual1") if has_manual else None
            triples.append((name, image, manual, _one_file(folder / "mask", f"{name}_{sub}_mask")))
        splits.append(_drive_split(triples))
    return tuple(splits)


def load_drive(data_dir=None):
    """DRIVE: retinal vessels in 40 colour fundus photographs, 565x584, with vessel masks
    and the camera's field-of-view (FOV) masks; split 21-40 train, 01-20 test. Handed out
    after registration, so never downloaded: docs/datasets.md says where to get it.

    Args:
        data_dir: DRIVE's own layout (``training/`` and ``test/``, also under ``DRIVE/``;
            without test vessel masks those are None) or the flat one (``images/``,
            ``masks/``, ``fov_masks/``, ``splits.csv`` with the columns
            ``filename,split``). None: ``cache_dir("drive")``.

    Returns:
        ``(train, test)`` :class:`Split` s; images ``(20, 584, 565, 3)``, masks
        (1 = vessel) and ``fov`` (1 = inside) ``(20, 584, 565, 1)`` float32.

    Raises:
        FileNotFoundError: nothing in the cache (saying where to get DRIVE); ValueError:
            ``data_dir`` holds neither layout, or a file is missing or bad.

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
    if (folder / "splits.csv").is_file():
        return _drive_flat(folder)
    for root in (folder, folder / "DRIVE"):
        if (root / "training").is_dir() and (root / "test").is_dir():
            return _drive_original(root)
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
    height, width = size
    if nearest:  # pixel centres
        rows = ((np.arange(height) + 0.5) * array.shape[0] / height).astype(int)
        cols = ((np.arange(width) + 0.5) * array.shape[1] / width).astype(int)
        return array[rows][:, cols]
    channels = [np.asarray(Image.fromarray(array[..., c]).resize((width, height), Image.BILINEAR))
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
    """The Oxford-IIIT Pet dataset: 7349 photos of cats and dogs, their trimaps as int32
    classes 0 background, 1 pet, 2 border (:data:`PET_CLASSES`); split ``trainval.txt``
    (3680) and ``test.txt`` (3669). Gray images are repeated to RGB; images that cannot
    be read as opaque RGB (or lack a valid trimap) are skipped with a warning naming them.

    Args:
        data_dir: where ``images.tar.gz`` and ``annotations.tar.gz`` were unpacked. None:
            :func:`fetch` both (about 810 MB, once).
        image_size: ``(height, width)`` to resize images (bilinear) and masks (nearest)
            to, giving stacked arrays; all at full size take about 16 GB as float32.

    Returns:
        ``(train, test)`` :class:`Split` s: images float32 RGB and masks int32
        ``(h, w, 1)``, listed (stacked with ``image_size``).
    """
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            fail("image_size", "(height, width), positive integers", image_size)
        image_size = tuple(check_int(side, "image_size's height and width") for side in image_size)
    folder = Path(data_dir) if data_dir is not None else fetch("oxford_pets")
    _require(folder, ("images", "annotations/trimaps"), "Oxford-IIIT Pet")
    return tuple(_pets_split(folder, n, image_size) for n in ("trainval.txt", "test.txt"))


# ------------------------------------------------------------------ synthetic cells
#: Mean distance in pixels between the centres of neighbouring synthetic cells.
CELL_SPACING = 32
#: Smaller pieces of a synthetic cell (in pixels, cut off by a bent border) are filled
#: with membrane.
MIN_CELL_AREA = 16
#: The pixel neighbourhood of a cell: 4-connectivity in 2D.
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _smooth_noise(rng, size, sigma):
    """Smooth random field of unit standard deviation, ``(size, size)``; wide ones
    are made at a lower resolution and zoomed (same look, a fraction of the time)."""
    step = max(1, int(sigma // 2))
    low = -(-size // step)
    field = ndimage.gaussian_filter(rng.standard_normal((low, low)), sigma / step, mode="wrap")
    if step > 1:
        field = ndimage.zoom(field, step, order=1, grid_mode=True, mode="grid-wrap")[:size, :size]
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
    yy += shift * _smooth_noise(rng, size, size / grid / 2)
    xx += shift * _smooth_noise(rng, size, size / grid / 2)
    _, nearest = spatial.cKDTree(centres[keep]).query(np.stack([yy.ravel(), xx.ravel()], -1))
    return nearest.reshape(size, size).astype(np.int32) + 1


def _membranes(rng, labels):
    """Borders between cells, 1 to 3 pixels wide; they separate the cells under
    4-connectivity (of two touching pixels of two cells, the upper/left one is on it).
    Slivers of cell smaller than ``MIN_CELL_AREA`` become membrane too."""
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    thick = ndimage.binary_dilation(edge, _FOUR_CONNECTED)
    membrane = edge | (thick & (_smooth_noise(rng, labels.shape[0], 6) > rng.uniform(-0.5, 0.5)))
    cells, _ = ndimage.label(~membrane, _FOUR_CONNECTED)
    return membrane | (np.bincount(cells.ravel()) < MIN_CELL_AREA)[cells]


def _cell_image(rng, labels, membrane):
    """EM-like picture: textured cells of varied brightness with a few dark vesicles,
    dark membranes, blur and noise."""
    size = labels.shape[0]
    brightness = rng.uniform(0.55, 0.85, labels.max() + 1)
    image = brightness[labels] + 0.05 * _smooth_noise(rng, size, 2)
    spots = np.zeros((size, size))
    spots.flat[rng.integers(0, size * size, size * size // 1500)] = 1
    image -= 0.25 * ndimage.gaussian_filter(spots, 2) * (2 * np.pi * 4)
    image[membrane] = rng.uniform(0.1, 0.2) + 0.05 * rng.standard_normal(membrane.sum())
    image = ndimage.gaussian_filter(image, rng.uniform(0.7, 1.0))
    image += rng.normal(0, 0.04, image.shape)
    return np.clip(image, 0, 1)


def synthetic_cells(n, size=256, seed=0):
    """Synthetic EM-like images of touching cells parted by thin dark membranes, with masks
    and instance labels: a task like ISBI 2012 that needs no download and that a small
    U-Net learns in about a minute on a CPU (how they are drawn: data/README.md).

    Args:
        n: number of images, >= 1.
        size: height and width in pixels, >= 32.
        seed: the same seed gives the same images (the first ones do not depend on ``n``).

    Returns:
        ``(images, masks, labels)``: images float32 ``(n, size, size, 1)`` in [0, 1],
        masks float32 (1 = cell interior, 0 = membrane), labels int32 ``(n, size, size)``:
        cells 1..k, the 4-connected regions of the mask (0 = membrane).

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


#: The datasets by name, each ``loader(data_dir=None, ...) -> (train, test)``.
LOADERS = {"isbi2012": load_isbi2012, "drive": load_drive, "oxford_pets": load_oxford_pets,
           "synthetic": load_synthetic}
