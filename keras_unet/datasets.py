"""Datasets: synthetic cells, public datasets (downloaded, checksummed, cached) and
a user's own folder of images and masks.

Every loader returns arrays in one convention, which the rest of the package relies on:

- images: float32 in [0, 1], shape ``(height, width, channels)`` with 1 (gray) or 3
  (RGB) channels. 8-bit pixels are divided by 255, 16-bit ones by 65535; float pixels
  must already be in [0, 1].
- binary masks: float32 {0, 1}, shape ``(height, width, 1)``; multi-class masks: int32
  class indices, shape ``(height, width, 1)``, where an ``ignore_index`` value (such as
  255) may mark unlabelled pixels. Mask values that would not read as meant (a JPEG
  mask's noise, 0/128, a void border) are a :class:`MaskValuesError` saying what to pass.
- a :class:`Split` ``(images, masks, names, fov)``: images and masks stacked into
  ``(n, height, width, channels)`` arrays when all have one size, else lists of arrays.

The public datasets:

============  =================================  ==========================================
dataset       loader                             data
============  =================================  ==========================================
ISBI 2012     :func:`load_isbi2012`              30 + 30 EM slices, 512x512 gray; mask 1 =
                                                 cell interior, 0 = membrane (downloaded)
DRIVE         :func:`load_drive`                 20 + 20 retina photos, 565x584 RGB; mask 1
                                                 = vessel, with field-of-view masks
                                                 (registration: never downloaded)
Oxford pets   :func:`load_oxford_pets`           7349 photos of cats and dogs; 3 classes
                                                 (downloaded, about 810 MB)
============  =================================  ==========================================

Downloads go to ``~/.keras/datasets/keras_unet/<name>`` (or ``$KERAS_UNET_DATA/<name>``)
once: each file is streamed to a temporary file, checked against its SHA-256 and only
then moved into place; archives are unpacked into a temporary folder, refusing any
member that would land outside it. A lock file makes concurrent processes wait for one
another, and a ``.complete`` marker tells a finished dataset from a half-done one. With
``data_dir=`` a loader reads a local copy instead and never touches the network.
"""

import contextlib
import csv
import hashlib
import json
import http.client
import numbers
import os
import secrets
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NamedTuple

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage, spatial

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None

#: File name suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
#: ``mask_mode="auto"`` takes masks whose values are all below this as class indices.
AUTO_MAX_CLASSES = 64
#: The marker file of a completely downloaded and unpacked dataset.
COMPLETE = ".complete"
#: Seconds without data after which a download is given up.
TIMEOUT = 60
#: Archive formats that :func:`extract` unpacks.
ARCHIVE_KINDS = ("tar", "zip")

DRIVE_HELP = """\
DRIVE is not downloaded automatically: its owners hand it out after registration.
Get it from https://drive.grand-challenge.org/ (register, then download the training
and test archives), then either
  - unpack it into {folder} so that it holds training/ and test/ (or DRIVE/training/ and
    DRIVE/test/), each with images/, mask/ and, where given, 1st_manual/; or
  - pass data_dir= the folder where you unpacked it.
A flat copy with images/NN.png, masks/NN.png, fov_masks/NN.png and splits.csv
(columns filename,split) works too. KERAS_UNET_DATA moves the cache folder."""


class Split(NamedTuple):
    """One split (train or test) of a dataset.

    Attributes:
        images: float32 images, an ``(n, height, width, channels)`` array when all
            have one size, else a list of ``(height, width, channels)`` arrays.
        masks: the masks, stacked or listed like ``images`` (float32 {0, 1} binary or
            int32 class indices, one channel), or ``None`` where the dataset gives
            none (e.g. the ISBI 2012 test images).
        names: the file stems, in order.
        fov: DRIVE's field-of-view masks (float32 {0, 1}, one channel), else ``None``.
    """

    images: object
    masks: object
    names: list
    fov: object = None


class DownloadError(OSError):
    """A download failed: HTTP error, connection cut, wrong checksum."""


# ----------------------------------------------------------------------- registry

#: SHA-256 of the 90 ISBI 2012 files (as in ../shared/data/isbi2012_em/SHA256SUMS:
#: byte-identical to zhixuhao/unet's PNGs, renamed N.png -> NN.png).
_ISBI_SHA256 = """
12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523  images/00.png
2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166  images/01.png
fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f  images/02.png
636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c  images/03.png
991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239  images/04.png
7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b  images/05.png
7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308  images/06.png
19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270  images/07.png
a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d  images/08.png
730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a  images/09.png
7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a  images/10.png
dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757  images/11.png
9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8  images/12.png
377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad  images/13.png
f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59  images/14.png
3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4  images/15.png
ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2  images/16.png
0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3  images/17.png
1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de  images/18.png
999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7  images/19.png
9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2  images/20.png
9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97  images/21.png
6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4  images/22.png
9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756  images/23.png
f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c  images/24.png
e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072  images/25.png
d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a  images/26.png
eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc  images/27.png
974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837  images/28.png
d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f  images/29.png
13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0  masks/00.png
cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1  masks/01.png
a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb  masks/02.png
c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834  masks/03.png
a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff  masks/04.png
2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118  masks/05.png
2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7  masks/06.png
2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144  masks/07.png
db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e  masks/08.png
8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b  masks/09.png
b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c  masks/10.png
e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db  masks/11.png
85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620  masks/12.png
88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d  masks/13.png
bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a  masks/14.png
59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369  masks/15.png
b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499  masks/16.png
4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe  masks/17.png
bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9  masks/18.png
bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9  masks/19.png
7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55  masks/20.png
772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4  masks/21.png
b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad  masks/22.png
2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540  masks/23.png
6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c  masks/24.png
c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d  masks/25.png
b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961  masks/26.png
5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840  masks/27.png
c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e  masks/28.png
1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9  masks/29.png
3c67a0f520d6504eecffe20fc2799287cad05e3d8915466c4127ee8463db03b6  test_images/00.png
73b2d6c585dd130b9e04c06ce4f7dd2c21496bc760c6088b948933d7a3ff44d8  test_images/01.png
33d0ba0f00760a8223d33e0d00f1fbd8992783c216f9fc386a2c7d62a31a3263  test_images/02.png
0507ff479733fefcbc00c68dc1b848dd7c15546e49241414d5a05beaf2092fbf  test_images/03.png
c75debf18db3b7e4476712d28bb6925e1d3b99287fc8808a3f8611f1f1ac9e6c  test_images/04.png
e2756965f5f7162c9bee9f05d6a6856d0ca310c736644000234cae634883c8f6  test_images/05.png
832c23a05680902deec4efe639373892b2cdc83ecfcdd6bc7b90f6f1d474379c  test_images/06.png
e673e89ac632bc3f13ff6dcd9d0f733b39d6618f21f015ed4106e1f32b3518f1  test_images/07.png
8064a6d599edadb9ebd0d23b3fe1a61a0c165445e2dfc1289af4e16509424344  test_images/08.png
6fe32299f09cfbff582cb90a39d1bd9214614a675be99e6729686f3a4d9b5a5f  test_images/09.png
8f907e1cfc8593527fb48c7fe08ba80eb380e0bfc0cdfe5eec8da0044eec0309  test_images/10.png
27ae843bb0a63ceded00acb182469a20292d70d717dc16296e6e1ea3e760dc7f  test_images/11.png
eb9eacb4cd836e84a36655e59c67c6ffc9be860ade97e585d21b1caf721acb2b  test_images/12.png
f7d454b79c73789c644c56d38a1adc57614fd45bbdaaeab25ad84aa9f36188f1  test_images/13.png
5e68324d85e271a23fb96da4425d12fb182ccad885edf63b5a33a4929e9f3788  test_images/14.png
874d88be3e6fb24ff4cc70cae292ec27462365c418a332631cb2ab17bac1bb47  test_images/15.png
69e09074fd73e5e9458067e77ba1d42bb212c350413f01b64e5d7269a1130588  test_images/16.png
95468c5106091112bff1fe694f06ac7af5f1b052e700fcbbe4492bcdd8cf47bf  test_images/17.png
090accd8da157be1f739a2bde77335216209ec854351d18d7d328ea2d3065c6a  test_images/18.png
fe7e8dd86300e462c2574f1c409510bb8bcb8b3ceb3c2bb28583e7241ab22f05  test_images/19.png
260b6e3e43a1c63da9779992ca90e692cd04e854029ef2f964010daf58ff4daf  test_images/20.png
cd82df9e4f7aa44a8d1172d4bac6f50dd3bc6dd063c1b3ad65647c4bc7749042  test_images/21.png
242289a02a83161b98553606654c17868818bdea638bc25c1208298501b92bfa  test_images/22.png
496786c0636607b2e086528d517e00c4444270d40972940c70f7ca93cc0cc173  test_images/23.png
a1979d58bceac2cd352a4aeb7a047c0e92d94c52a3cbc60abac67bb7a68865a1  test_images/24.png
8a078743880a854f2127cc59425c5a47bbf348b31ac2524cf7621eb108748c5a  test_images/25.png
2643df636a202d53bdc870bd1239db761d1b586e048cb6ddeb83310c9b76f6f4  test_images/26.png
36c4983e85e127a622e395842642dd0762657831901e70ff94647f3f808e53fe  test_images/27.png
0c2d296e0cd652b69198e9399e91bf2693101e58a8c878c6fe5a902d2b9448c5  test_images/28.png
e417ddbdcfed6b08b1c97d5a7796ed5b167ccc4caaf1226dc41dbb69cd724e25  test_images/29.png
"""


def _isbi_entries():
    """zhixuhao/unet's ``train/image/N.png`` -> ``images/NN.png`` and so on."""
    remote = {"images": "train/image", "masks": "train/label", "test_images": "test"}
    entries = []
    for sha256, filename in zip(*[iter(_ISBI_SHA256.split())] * 2):
        folder, name = filename.split("/")
        url = f"{remote[folder]}/{int(Path(name).stem)}.png"
        entries.append({"url": url, "sha256": sha256, "filename": filename, "kind": "file"})
    return entries


#: Where each downloadable dataset comes from; the registry's ``url`` values are
#: relative to these. Point one at a mirror (or a test server) to download from there.
BASE_URLS = {
    "isbi2012_em": (
        "https://raw.githubusercontent.com/zhixuhao/unet/"
        "b45af4d458437d8281cc218a07fd4380818ece4a/data/membrane/"
    ),
    "oxford_pets": "https://www.robots.ox.ac.uk/~vgg/data/pets/data/",
}

#: Per dataset, the files to download: ``url`` (relative to ``BASE_URLS[name]``),
#: ``sha256``, ``filename`` (where it goes in the dataset's folder) and ``kind``:
#: ``"file"`` is kept as is, ``"tar"`` and ``"zip"`` archives are unpacked into the
#: folder and then deleted. The Oxford pets checksums are TensorFlow Datasets'
#: (tensorflow_datasets/url_checksums/oxford_iiit_pet.txt).
REGISTRY = {
    "isbi2012_em": _isbi_entries(),
    "oxford_pets": [
        {
            "url": "images.tar.gz",
            "sha256": "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
            "filename": "images.tar.gz",
            "kind": "tar",
        },
        {
            "url": "annotations.tar.gz",
            "sha256": "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
            "filename": "annotations.tar.gz",
            "kind": "tar",
        },
    ],
}


# ---------------------------------------------------------------------- downloads


def cache_dir(name=None):
    """The folder where downloaded datasets are kept: ``$KERAS_UNET_DATA`` if set,
    else ``~/.keras/datasets/keras_unet``; with ``name``, that dataset's folder in it.

    Example:
        >>> cache_dir("isbi2012_em").name
        'isbi2012_em'
        >>> cache_dir("isbi2012_em").parent == cache_dir()
        True
    """
    root = os.environ.get("KERAS_UNET_DATA") or "~/.keras/datasets/keras_unet"
    root = Path(root).expanduser()
    return root / name if name else root


def _progress_bar(total, unit="byte"):
    import keras  # here only: reading data must not start a Keras backend

    # one update a second at most: in a notebook each update is kept as an output
    return keras.utils.Progbar(total, unit_name=unit, interval=1.0)


def _stream(url, out, progress):
    """Copy ``url`` into the open file ``out``; its SHA-256 (hex)."""
    digest, received, total = hashlib.sha256(), 0, None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
            if progress:
                print(f"Downloading {url.rsplit('/', 1)[-1]}")  # no host: notebooks keep this line
                bar = _progress_bar(total)
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    bar.update(received)
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DownloadError(f"could not download {url}: {error}") from error
    if total is not None and received != total:
        raise DownloadError(
            f"the download of {url} was cut off after {received} of {total} bytes"
        )
    return digest.hexdigest()


def download(url, sha256, path, *, progress=True):
    """Download ``url`` to ``path``, checking its SHA-256.

    The file is streamed to a temporary file beside ``path`` and moved into place
    (atomically) only once complete and verified; on any failure the temporary file
    is deleted and ``path`` is left as it was.

    Args:
        url: what to download (``https://``, ``http://`` or ``file://``).
        sha256: the expected SHA-256, 64 hex digits.
        path: where to put the file; its folder is created.
        progress: show a progress bar (``keras.utils.Progbar``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        DownloadError: for an HTTP or connection error, a transfer cut off before
            its announced length, or a checksum mismatch (naming the URL and both
            checksums).

    Example:
        >>> import hashlib, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "source.txt").write_bytes(b"cells")
        >>> digest = hashlib.sha256(b"cells").hexdigest()
        >>> path = download((folder / "source.txt").as_uri(), digest, folder / "copy.txt",
        ...                 progress=False)
        >>> path.read_bytes()
        b'cells'
    """
    hexadecimal = set("0123456789abcdef")
    if not (isinstance(sha256, str) and len(sha256) == 64 and set(sha256.lower()) <= hexadecimal):
        raise ValueError(f"sha256 must be 64 hexadecimal digits; got {sha256!r}")
    def fetch(out):
        actual = _stream(url, out, progress)
        if actual != sha256.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256.lower()}, got "
                f"{actual}. The file was deleted; if the server's file changed, update "
                f"the registry (keras_unet.datasets.REGISTRY)"
            )

    return write_atomically(path, fetch)


def _new_file_beside(path):
    """A new empty file ``.<name>.<random>.part`` beside ``path``, with the mode
    ``open()`` gives (``0o666`` less the umask; ``tempfile.mkstemp`` would give 0o600)."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            open(temporary, "xb").close()  # "x": fails rather than reuse a file
            return temporary
        except FileExistsError:
            continue


def writable_folder(path):
    """The nearest folder at or above ``path`` that exists (where ``path`` would be
    made), checked to take new entries by making and removing a probe folder there
    (permissions alone say nothing for root). Changes nothing.

    Raises:
        NotADirectoryError: the nearest existing path (its ``filename``) is not a folder.
        OSError: nothing can be created in that folder (its ``filename``).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> writable_folder(folder / "new" / "deeper") == folder
        True
    """
    path = Path(path)
    existing = next(f for f in (path, *path.parents) if os.path.lexists(f))
    if not existing.is_dir():
        raise NotADirectoryError(20, "not a folder", str(existing))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".keras-unet-probe-", dir=existing))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(existing)) from None
    return existing


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into
    place: ``path`` ends up whole or untouched, never half-written. Creates the folder.
    The file gets the permissions a plain ``open()`` gives a new file: ``0o666``
    less the umask (``-rw-r--r--`` under the usual umask 022).

    Example:
        >>> import tempfile
        >>> path = write_atomically(Path(tempfile.mkdtemp()) / "a" / "b.txt",
        ...                         lambda file: file.write(b"whole"))
        >>> path.read_bytes()
        b'whole'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _new_file_beside(path)
    try:
        with open(temporary, "wb") as file:  # a named file: some writers read file.name
            write(file)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return path


def _leaves_root(name, base=""):
    """Whether the archive path ``name``, relative to the archive folder ``base``,
    points outside the archive's root (absolute, a drive, or too many ``..``)."""
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return True
    depth = 0
    for part in PurePosixPath(base, name.replace("\\", "/")).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _check_members(archive, members):
    """Raise if a member ``(name, link)`` of ``archive`` would land outside it;
    ``link`` is ``(target, relative_to)`` for links, else None."""
    for name, link in members:
        bad = _leaves_root(name)
        if link is not None:
            target, base = link
            bad = bad or _leaves_root(target, base)
        if bad:
            where = f"{name} -> {link[0]}" if link else name
            raise ValueError(
                f"unsafe archive {archive}: the member {where!r} would land outside the "
                f"folder it is extracted to; nothing was extracted"
            )


def _tar_link(member):
    """A tar member's link as ``(target, the folder it is relative to)``, or None."""
    if member.issym():
        return member.linkname, str(PurePosixPath(member.name).parent)
    if member.islnk():
        return member.linkname, ""
    return None


def _unpack(archive, folder, kind):
    if kind == "zip":
        with zipfile.ZipFile(archive) as opened:
            _check_members(archive, [(name, None) for name in opened.namelist()])
            opened.extractall(folder)  # zipfile writes links as plain files
        return
    with tarfile.open(archive) as opened:
        _check_members(archive, [(m.name, _tar_link(m)) for m in opened.getmembers()])
        try:
            opened.extractall(folder, filter="data")
        except tarfile.FilterError as error:
            raise ValueError(f"unsafe archive {archive}: {error}; nothing was kept") from error


def _archive_kind(archive, kind):
    if kind is None:
        if tarfile.is_tarfile(archive):
            kind = "tar"
        elif zipfile.is_zipfile(archive):
            kind = "zip"
        else:
            raise ValueError(f"cannot unpack {archive}: it is neither a tar nor a zip archive")
    if kind not in ARCHIVE_KINDS:
        choices = ", ".join(map(repr, ARCHIVE_KINDS))
        raise ValueError(f"kind must be one of {choices}; got {kind!r}")
    return kind


def extract(archive, target, kind=None):
    """Unpack a tar (any compression) or zip ``archive`` into the folder ``target``.

    Everything is first unpacked into a temporary folder inside ``target``; then each
    top-level entry is renamed into place, replacing an entry of the same name. A
    member that would land outside ``target`` (an absolute path, ``..``, a link
    pointing outside) makes the whole archive refused; tar archives are also unpacked
    with tarfile's ``"data"`` filter (no devices, no set-uid bits).

    Args:
        archive: the archive file.
        target: the folder to unpack into; created if missing.
        kind: ``"tar"``, ``"zip"`` or None to tell from the file's content.

    Returns:
        ``target`` as a ``Path``.

    Raises:
        ValueError: for an unsafe archive, naming it and the member, or a file that
            is no archive of ``kind``.

    Example:
        >>> import io, tarfile, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with tarfile.open(folder / "a.tar.gz", "w:gz") as tar:
        ...     info = tarfile.TarInfo("data/hello.txt"); info.size = 2
        ...     tar.addfile(info, io.BytesIO(b"hi"))
        >>> (extract(folder / "a.tar.gz", folder / "out") / "data" / "hello.txt").read_text()
        'hi'
    """
    archive, target = Path(archive), Path(target)
    kind = _archive_kind(archive, kind)
    target.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
    try:
        try:
            _unpack(archive, temporary, kind)
        except (tarfile.TarError, zipfile.BadZipFile) as error:
            raise ValueError(f"cannot unpack {archive} as a {kind} archive: {error}") from error
        for entry in sorted(temporary.iterdir()):
            destination = target / entry.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            os.replace(entry, destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


@contextlib.contextmanager
def locked(path, *, wait=True, remove=False):
    """Hold an exclusive lock (``flock``) on the file ``path`` for the ``with`` block, so
    that two processes writing the same files take turns. The file (and its folder) is
    made if missing. On Windows, where there is no ``fcntl``, nothing is locked.

    Args:
        path: the lock file.
        wait: True to wait while another process holds the lock; False to raise
            ``BlockingIOError`` at once instead.
        remove: True to remove the file when the block ends (while still holding the
            lock); a lock taken on a file that the process before removed just after it
            was opened is then taken again on the new file.

    Example:
        >>> import tempfile
        >>> lock = Path(tempfile.mkdtemp()) / "run.lock"
        >>> with locked(lock, wait=False, remove=True):
        ...     lock.exists()
        True
        >>> lock.exists()
        False
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        handle = open(path, "a")
        if fcntl is None:
            break
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            handle.close()
            raise
        if not remove:
            break
        try:  # still the file at path, not one removed by the run before?
            if os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        try:
            if remove:  # while locked: no later process locks a removed file
                path.unlink(missing_ok=True)
        finally:
            handle.close()  # releases the lock


def _fetch_entry(url, entry, folder, progress):
    if entry["kind"] not in ("file", *ARCHIVE_KINDS):
        raise ValueError(f"registry entry {entry['filename']}: unknown kind {entry['kind']!r}")
    target = folder / entry["filename"]
    if entry["kind"] == "file":
        if not target.exists():
            download(url, entry["sha256"], target, progress=progress)
        return
    marker = folder / f".{entry['filename']}.extracted"
    if marker.exists():
        return
    if not target.exists():
        download(url, entry["sha256"], target, progress=progress)
    try:
        extract(target, folder, entry["kind"])
    finally:  # a refused archive is not kept either
        target.unlink()
    marker.touch()


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
        if name in listed:
            own = listed[name]
            if not (isinstance(own, dict) and {"base_url", "files"} <= set(own)):
                raise ValueError(f"KERAS_UNET_REGISTRY={override}: {name!r} must map to "
                                 f'{{"base_url": ..., "files": [...]}}')
            return own["base_url"], own["files"]
    return BASE_URLS[name], REGISTRY[name]


def fetch(name, *, progress=True):
    """Download the dataset ``name`` of :data:`REGISTRY` into its cache folder, once.

    The environment variable ``KERAS_UNET_REGISTRY`` may name a JSON file that
    replaces a dataset's source: ``{name: {"base_url": ..., "files": [entries like
    REGISTRY's]}}``: a mirror, or (as the test suite does for the tutorials) a small
    copy served on the loopback interface, with its own checksums.

    A dataset whose folder has the ``.complete`` marker is not fetched again. The
    download and unpacking run under a lock file (``.<name>.lock`` beside the folder),
    so a second process fetching the same dataset waits, then finds it complete.
    Files already there from an interrupted run are kept (each one was verified
    before it was moved into place).

    Returns:
        the dataset's folder, ``cache_dir(name)``.

    Raises:
        ValueError: for an unknown ``name`` or an unsafe archive.
        DownloadError: for a failed download (see :func:`download`).

    Example:
        >>> sorted(REGISTRY)
        ['isbi2012_em', 'oxford_pets']
        >>> len(REGISTRY["isbi2012_em"]), REGISTRY["isbi2012_em"][0]["url"]
        (90, 'train/image/0.png')
    """
    if name not in REGISTRY:
        raise ValueError(f"name must be one of {', '.join(sorted(REGISTRY))}; got {name!r}")
    folder = cache_dir(name)
    done = folder / COMPLETE
    if done.exists():
        return folder
    with locked(folder.parent / f".{name}.lock"):
        if done.exists():  # another process finished it while we waited
            return folder
        base_url, entries = _source(name)
        # many small files (ISBI's 90 PNGs): one bar counting files, not a bar each
        per_file = progress and len(entries) > 1 and all(e["kind"] == "file" for e in entries)
        if per_file:
            print(f"Downloading {name}: {len(entries)} files")
            bar = _progress_bar(len(entries), unit="file")
        try:
            for done_files, entry in enumerate(entries, start=1):
                _fetch_entry(base_url + entry["url"], entry, folder,
                             progress and not per_file)
                if per_file:
                    bar.update(done_files)
        except BaseException:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing was kept
            raise
        done.touch()
    return folder


# ------------------------------------------------------------------------ reading


def _open(path):
    """The stored pixels of an image file: ``(array, colours)``.

    ``array`` is ``(H, W)`` or ``(H, W, C)`` in the file's own dtype; for a palette
    image it holds the palette indices and ``colours`` the RGB(A) colours, else
    ``colours`` is None. TIFFs are read with tifffile (every bit depth, exactly), or
    with PIL where tifffile lacks the codec (LZW and JPEG need imagecodecs).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such image file: {path}")
    if path.suffix.lower() in (".tif", ".tiff"):
        array = _open_tiff(path)
        if array is not None:
            return array, None
    try:
        with Image.open(path) as image:
            image.load()
            frames = getattr(image, "n_frames", 1)
            pixels = _pil_array(image)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"cannot read the image {path}: {error}") from error
    if frames > 1:
        raise ValueError(
            f"{path} has {frames} frames (an animated or multi-page image); expected one image"
        )
    return pixels


def _open_tiff(path):
    """A one-page TIFF's pixels, ``(H, W)`` or ``(H, W, C)``; None if tifffile
    cannot decode it."""
    try:
        with tifffile.TiffFile(path) as tif:
            pages, series = len(tif.pages), tif.series[0]
            array, axes = series.asarray(), series.axes
    except (OSError, ValueError, IndexError, KeyError):
        return None
    if pages > 1:
        raise ValueError(f"{path} is a multi-page TIFF ({pages} pages); expected one image")
    if axes == "SYX":  # planar RGB
        array = np.moveaxis(array, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise ValueError(f"{path} has TIFF axes {axes!r}; expected YX or YXS")
    return array


def _pil_array(image):
    mode = image.mode
    if mode == "P":
        colours = image.convert("RGBA" if "transparency" in image.info else "RGB")
        return np.asarray(image), np.asarray(colours)
    if mode == "1":
        image = image.convert("L")
    elif mode in ("PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    array = np.asarray(image)
    if mode.startswith("I;16"):
        array = array.astype(np.uint16)
    elif mode == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
        array = array.astype(np.uint16)  # 16-bit PNGs open as 32-bit "I"
    return array, None


def _full_scale(dtype):
    return {np.uint8: 255, np.uint16: 65535}.get(np.dtype(dtype).type, 1)


def _drop_alpha(array, path):
    """``(H, W, C)`` without an alpha channel, which must be fully opaque."""
    alpha = array[..., -1]
    transparent = np.count_nonzero(alpha != _full_scale(array.dtype))
    if transparent:
        raise ValueError(
            f"{path} has an alpha channel with {transparent} transparent pixels; "
            f"only fully opaque images are read (remove the alpha channel first)"
        )
    return array[..., :-1]


def _channels(array, path):
    """``(H, W, 1)`` or ``(H, W, 3)``."""
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{path} has shape {array.shape}; expected 1 to 4 channels")
    if array.shape[-1] in (2, 4):
        array = _drop_alpha(array, path)
    return array


def _to_unit(array, path):
    """float32 in [0, 1] from uint8, uint16, bool or float pixels."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / _full_scale(array.dtype)
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{path} has NaN pixels ({np.isnan(array).sum()} of them)")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"{path} is a float image with values in [{low:g}, {high:g}]; "
                f"float images must be in [0, 1]"
            )
        return array.astype(np.float32)
    raise ValueError(
        f"{path} has {array.dtype} pixels; expected 8-bit, 16-bit or float in [0, 1]"
    )


def to_float_image(array, name="image"):
    """An image array as float32 ``(height, width, channels)`` in [0, 1], the
    package's image convention: uint8 / 255, uint16 / 65535, bool as 0/1, float
    kept if in [0, 1]; a 2-D array gets a channel axis; a fully opaque alpha channel
    is dropped. ``name`` (a path, or ``"images[3]"``) starts every error message.

    Example:
        >>> import numpy as np
        >>> image = to_float_image(np.array([[0, 51, 255]], np.uint8))
        >>> image.shape, image.dtype, image.ravel().astype(float).round(3).tolist()
        ((1, 3, 1), dtype('float32'), [0.0, 0.2, 1.0])
        >>> to_float_image(np.array([[0.5, 2.0]]), "images[1]")
        Traceback (most recent call last):
        ...
        ValueError: images[1] is a float image with values in [0.5, 2]; float images must be in [0, 1]
    """
    return _to_unit(_channels(np.asarray(array), name), name)


def read_image(path):
    """Read an image file as float32 ``(height, width, channels)`` in [0, 1].

    PNG, JPEG, TIFF, BMP and GIF, 8 or 16 bits, gray or RGB. 8-bit pixels are divided
    by 255, 16-bit ones by 65535; float TIFFs must hold values in [0, 1]. An alpha
    channel is dropped if fully opaque; palette images (GIF, indexed PNG) become RGB,
    or gray when every colour of the palette is gray; CMYK and other colour spaces are
    converted to RGB.

    Raises:
        ValueError: naming the file, if it is missing, unreadable (truncated, not an
            image), multi-page or animated (several frames), transparent, float outside
            [0, 1] or NaN.

    Example:
        >>> import tempfile, numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "gray.png"
        >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save(path)
        >>> image = read_image(path)
        >>> image.shape, image.dtype, image.ravel().tolist()
        ((1, 2, 1), dtype('float32'), [0.0, 1.0])
    """
    array, colours = _open(path)
    if colours is not None:  # a palette image: its colours, gray if all of them are
        gray = not np.ptp(colours[..., :3], axis=-1).any()
        array = colours[..., [0, 3] if colours.shape[-1] == 4 else [0]] if gray else colours
    return to_float_image(array, path)


def _mask_pixels(path):
    """``(gray, colour)`` of a mask file: the gray values ``(H, W)`` (None for a
    colour mask) and the colours ``(H, W, 3)`` (None for a gray mask).

    A palette image whose colours are all gray gives those gray values; one with
    colours gives its palette indices as ``gray`` (class indices, as PASCAL VOC).
    """
    array, colours = _open(path)
    if colours is not None:
        colours = colours[..., :3]  # a transparent palette entry is a colour like any
        if np.ptp(colours, axis=-1).any():
            return array, colours
        return colours[..., 0], colours
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3]
        return (None if np.ptp(rgb, axis=-1).any() else rgb[..., 0]), rgb
    if array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"the mask {path} has shape {array.shape}; expected one channel")
    return array, None


def _values_text(values, limit=10):
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _is_binary(values, dtype):
    return set(values) <= {0, 1} or set(values) <= {0, _full_scale(dtype)}


def _is_classes(values):
    return all(float(v).is_integer() and 0 <= v < AUTO_MAX_CLASSES for v in values)


def _unique(gray, path):
    if np.issubdtype(gray.dtype, np.floating) and np.isnan(gray).any():
        raise ValueError(f"the mask {path} has NaN values")
    return np.unique(gray).tolist()


def _palette_classes(colours, palette, path):
    codes = colours[..., :3].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    known = {(r << 16) | (g << 8) | b: c for (r, g, b), c in palette.items()}
    found, inverse = np.unique(codes, return_inverse=True)
    missing = [c for c in found.tolist() if c not in known]
    if missing:
        names = ", ".join(str((c >> 16, (c >> 8) & 255, c & 255)) for c in missing[:10])
        raise ValueError(f"the mask {path} has colours that are not in palette: {names}")
    classes = np.array([known[c] for c in found.tolist()], np.int32)
    return classes[inverse.reshape(codes.shape)]


def _check_palette(palette):
    if not isinstance(palette, dict) or not palette:
        raise ValueError(f"palette must be a non-empty dict {{(r, g, b): class}}; got {palette!r}")
    for colour, index in palette.items():
        ok = isinstance(colour, tuple) and len(colour) == 3
        ok = ok and all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in colour)
        if not ok or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(
                f"palette must map (r, g, b) tuples of 0..255 to class indices >= 0; "
                f"got {colour!r}: {index!r}"
            )


#: The names ``mask_mode`` takes; ``"classes"`` is another name for ``"multiclass"``.
MASK_MODES = ("auto", "binary", "multiclass", "palette")
_MODE_ALIASES = {"classes": "multiclass"}
#: Masks whose pixels lie at least this much in the bottom or top quarter of their
#: values' range are taken for binary masks with noisy edges (JPEG, anti-aliasing).
NEAR_BINARY = 0.9


class MaskValuesError(ValueError):
    """Mask values that would not read as meant, and what to pass instead.

    The message words the fix in this package's keyword arguments (``threshold=127``,
    ``ignore_index=255``, ``mask_mode='binary'``); the same fix is in ``fix`` as
    ``{keyword: value}`` (empty when no argument fixes it), so that another front end
    can word it its own way.

    Attributes:
        values: the mask values found, sorted.
        files: the masks that hold the values at fault (paths, or ``masks[i]``).
        fix: ``{keyword: value}`` to pass, e.g. ``{"threshold": 127}``; may be empty.

    Example:
        >>> try:
        ...     mask_classes([np.array([[0, 1, 255]])])
        ... except MaskValuesError as error:
        ...     error.fix, error.files
        ({'ignore_index': 255}, ['masks[0]'])
    """

    def __init__(self, message, *, values, files, fix):
        super().__init__(message)
        self.values, self.files, self.fix = list(values), list(files), dict(fix)


def _value_counts(array):
    """``{value: pixel count}`` of an array, sorted by value."""
    values, counts = np.unique(array, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def _too_sparse(values):
    """Whether the class indices ``values`` (sorted integers >= 0) leave at least as many
    indices unused below their largest as they use: the rule of :func:`mask_classes`."""
    n = int(values[-1]) + 1
    return n > 2 and n - len(values) >= len(values)


def _fix_for(counts):
    """``(advice, fix)`` for mask values that do not read as wanted; ``counts`` is
    ``{value: pixels}``. The one rule that words every mask-values error:

    - class indices that :func:`mask_classes` accepts: ``mask_mode='multiclass'``;
    - one high value above classes that would be fine without it (0, 1, 2 and 255):
      a void label, ``ignore_index=`` that value;
    - 0 and 255 (or 65535) only: binary masks, ``mask_mode='binary'``;
    - ``NEAR_BINARY`` of the pixels in the bottom or top quarter of the values' range:
      binary masks with noisy edges, ``threshold=`` the middle of the range;
    - else up to 8 values, each a class: a gray ``palette``; more: renumber them.
    """
    values = sorted(counts)
    integral = all(float(v).is_integer() and v >= 0 for v in values)
    if integral and not _too_sparse(values):
        return ("Pass mask_mode='multiclass' to take them as class indices",
                {"mask_mode": "multiclass"})
    if integral and len(values) >= 3 and not _too_sparse(values[:-1]):
        void = int(values[-1])
        return (f"If {void} marks unlabelled pixels, pass ignore_index={void}",
                {"ignore_index": void})
    if set(values) in ({0, 255}, {0, 65535}):
        return "They are binary masks: pass mask_mode='binary'", {"mask_mode": "binary"}
    low, high = values[0], values[-1]
    quarter = (high - low) / 4
    ends = sum(n for v, n in counts.items() if v <= low + quarter or v >= high - quarter)
    if ends >= NEAR_BINARY * sum(counts.values()):
        middle = int(low + high) // 2 if integral else (low + high) / 2
        look = (f"binary masks of {low:g} and {high:g}" if len(values) == 2 else
                "binary masks with in-between values at the edges (JPEG, smoothing)")
        return (f"They look like {look}: pass threshold={middle:g} to read the pixels above "
                f"{middle:g} as 1", {"threshold": middle})
    if integral and len(values) <= 8:
        palette = {(int(v),) * 3: i for i, v in enumerate(values)}
        return (f"If each value is a class, number them with palette={palette}",
                {"palette": palette})
    return "Renumber the classes 0, 1, 2, ... in the files", {}


def _count(items, noun):
    """``1 mask`` / ``3 masks``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _files_text(files, limit=3):
    """``the mask a.png`` / ``the masks a.png, b.png and 4 more``, and the verb."""
    if len(files) == 1:
        return f"the mask {files[0]}", "has"
    shown = ", ".join(map(str, files[:limit]))
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return f"the masks {shown}{more}", "have"


def _auto_mode(values, dtype):
    if _is_binary(values, dtype):
        return "binary"
    if _is_classes(values):
        return "multiclass"
    return None


def _thresholded(gray, threshold, path):
    """A gray mask's pixels above ``threshold`` as 1, the rest 0: float32 ``(H, W, 1)``."""
    if np.issubdtype(gray.dtype, np.integer):
        top = np.iinfo(gray.dtype).max
        if threshold >= top:
            raise ValueError(
                f"threshold={threshold:g} is not below {top}, the top value of the mask "
                f"{path}: every pixel would read as 0 (for 8-bit masks, e.g. threshold=127)"
            )
    values = _unique(gray, path)
    if set(values) == {0, 1} and threshold >= 1:
        raise ValueError(
            f"the mask {path} holds 0 and 1 only, which threshold={threshold:g} reads as all "
            f"0: it is a binary mask already; read it without threshold="
        )
    return (gray > threshold).astype(np.float32)[..., None]


def _convert_mask(gray, colours, mode, palette, path, threshold=None):
    """One mask file's pixels in the package's convention, ``(H, W, 1)``."""
    if mode == "auto" and palette is not None:
        mode = "palette"
    if mode == "palette":
        if colours is None:
            colours = np.repeat(gray[..., None], 3, axis=-1)
        return _palette_classes(colours, palette, path)[..., None]
    if gray is None:
        raise ValueError(
            f"the mask {path} is colour-coded; pass mask_mode='palette' and "
            f"palette={{(r, g, b): class, ...}}"
        )
    if threshold is not None:
        return _thresholded(gray, threshold, path)
    values = _unique(gray, path)
    if mode == "auto":
        mode = _auto_mode(values, gray.dtype)
    if mode == "binary" and _is_binary(values, gray.dtype):
        return (gray > 0).astype(np.float32)[..., None]
    if mode == "multiclass":
        if all(float(v).is_integer() and v >= 0 for v in values):
            return gray.astype(np.int32)[..., None]
        raise ValueError(
            f"the mask {path} has the values {_values_text(values)}; expected class "
            f"indices (integers >= 0)"
        )
    expected = "binary values (0/255 or 0/1)" if mode == "binary" else (
        f"binary values (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}")
    advice, fix = _fix_for(_value_counts(gray))
    raise MaskValuesError(
        f"the mask {path} has the values {_values_text(values)}; expected {expected}. "
        f"{advice}", values=values, files=[path], fix=fix)


def read_mask(path, mode="auto", palette=None, *, threshold=None, ignore_index=None):
    """Read a mask file in the package's convention.

    Args:
        path: a PNG, TIFF, GIF or BMP mask. A JPEG's lossy values are refused, with
            the advice to pass ``threshold=``.
        mode: ``"binary"``: values 0/255 (0/65535) or 0/1, to float32 {0, 1}.
            ``"multiclass"`` (also called ``"classes"``): integer class indices as
            stored, to int32.
            ``"palette"``: colours mapped through ``palette`` to int32 classes.
            ``"auto"``: ``"palette"`` if a palette is given, ``"multiclass"`` if
            ``ignore_index`` is, else ``"binary"`` for binary values and
            ``"multiclass"`` for values below ``AUTO_MAX_CLASSES``.
            A palette-mode image (PIL "P") reads as its gray colours if all are
            gray, else as its palette indices.
        palette: ``{(r, g, b): class}`` for ``mode="palette"``.
        threshold: for near-binary gray masks (JPEG masks, anti-aliased edges): the
            pixels above ``threshold``, in the file's own scale (127 for an 8-bit
            mask), become 1, the others 0: a binary float32 mask. Only with
            ``mode="auto"`` or ``"binary"``; a mask of 0 and 1 only is refused with
            ``threshold >= 1`` (it would read as all 0).
        ignore_index: the value of unlabelled ("void") pixels, e.g. 255: the mask is
            read as class indices (int32) and those pixels keep the value, which the
            package's losses and metrics leave out (they count labels in
            ``[0, n_classes)`` only). Not with ``mode="binary"`` or ``threshold``.

    Returns:
        ``(height, width, 1)``: float32 {0, 1} (binary) or int32 (classes).

    Raises:
        MaskValuesError: (a ValueError) naming the file, for values that fit neither
            mode; its message and its ``fix`` say what to pass instead.
        ValueError: naming the file: unreadable, animated, a colour not in
            ``palette``, values that do not fit ``mode`` (listed); or bad arguments.

    Example:
        >>> import tempfile, numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "mask.png"
        >>> Image.fromarray(np.array([[0, 255, 255]], np.uint8)).save(path)
        >>> mask = read_mask(path)
        >>> mask.shape, mask.dtype, mask.ravel().tolist()
        ((1, 3, 1), dtype('float32'), [0.0, 1.0, 1.0])
        >>> read_mask(path, "multiclass").ravel().tolist()
        [0, 255, 255]
        >>> Image.fromarray(np.array([[3, 250, 128, 127]], np.uint8)).save(path)
        >>> read_mask(path, threshold=127).ravel().tolist()  # a JPEG-like mask
        [0.0, 1.0, 1.0, 0.0]
        >>> Image.fromarray(np.array([[0, 1, 255]], np.uint8)).save(path)
        >>> read_mask(path, ignore_index=255).ravel().tolist()  # 255: unlabelled
        [0, 1, 255]
    """
    mode = _check_mode(mode, palette, threshold, ignore_index)
    gray, colours = _mask_pixels(path)
    return _convert_mask(gray, colours, mode, palette, path, threshold)


def check_ignore_index(ignore_index):
    """Refuse an ``ignore_index`` (the value of unlabelled pixels) that is not an integer
    >= 0; None (no unlabelled pixels) passes. The one rule of the loaders and of
    :mod:`keras_unet.weights`.

    Example:
        >>> check_ignore_index(255)
        >>> check_ignore_index(-1)
        Traceback (most recent call last):
        ValueError: ignore_index must be an integer >= 0, the value of unlabelled pixels (e.g. 255); got -1
    """
    if ignore_index is None:
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral) \
            or ignore_index < 0:
        raise ValueError(
            f"ignore_index must be an integer >= 0, the value of unlabelled pixels "
            f"(e.g. 255); got {ignore_index!r}"
        )


def _check_mode(mode, palette, threshold=None, ignore_index=None):
    """The checked ``mask_mode`` (its alias resolved) of these arguments."""
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in MASK_MODES:
        choices = ", ".join(map(repr, MASK_MODES))
        raise ValueError(f"mask_mode must be one of {choices}; got {mode!r}")
    if mode == "palette" and palette is None:
        raise ValueError("mask_mode='palette' needs palette={(r, g, b): class, ...}")
    if palette is not None:
        _check_palette(palette)
    if threshold is not None:
        number = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if not number or not np.isfinite(threshold) or threshold < 0:
            raise ValueError(
                f"threshold must be a number >= 0 in the masks' own scale (e.g. 127 for "
                f"8-bit masks); got {threshold!r}"
            )
        if ignore_index is not None:
            raise ValueError(
                "give threshold= (binary masks) or ignore_index= (class masks), not both")
        if mode in ("multiclass", "palette") or palette is not None:
            raise ValueError(
                f"threshold= reads binary masks; it does not go with "
                f"{'palette=' if palette is not None else f'mask_mode={mode!r}'}"
            )
        return "binary"
    if ignore_index is not None:
        check_ignore_index(ignore_index)
        if mode == "binary":
            raise ValueError(
                "ignore_index= keeps unlabelled pixels in class-index masks; it does not go "
                "with mask_mode='binary': use mask_mode='multiclass'"
            )
        return "multiclass" if mode == "auto" and palette is None else mode
    return mode


def mask_classes(masks, ignore_index=None, *, names=None, n_classes=None):
    """The number of classes that class-index masks use, from the values in them.

    The classes are ``0 .. k-1``, ``k - 1`` the largest value present (not counting
    ``ignore_index``); at least 2. The values must be dense: if the indices below the
    largest that no mask uses are as many as those used (or more), the masks are not
    what a class-index mask is, and a :class:`MaskValuesError` says what they look
    like and what to pass:

    - 0, 1 and a void border of 255: ``ignore_index=255``;
    - 0 and 128, or values 0-12 and 240-255 (a JPEG mask): binary masks,
      ``threshold=`` the middle of the range (``mask_mode='binary'`` for 0/255);
    - a few spread values (0, 85, 170, 255): a gray ``palette`` numbering them.

    ``ignore_index`` must be above every class (the losses and metrics leave out the
    labels outside ``[0, n_classes)``).

    ``n_classes`` says how many classes there are when the masks do not show it (a
    dataset of 21 classes of which these masks use 0 and 15): the values are then not
    checked for sparseness, but every one must be below ``n_classes`` (or be
    ``ignore_index``), since the losses and metrics would silently leave out the
    pixels of a class at or above it.

    Args:
        masks: integer (or bool) masks, an array ``(n, ...)`` or a list of arrays.
        ignore_index: the value of unlabelled pixels, not a class; None for none.
        names: a name for each mask (its file) for the messages; else ``masks[i]``.
        n_classes: the number of classes (an int >= 2), or None to count them from
            the values.

    Returns:
        the number of classes, an int >= 2 (``n_classes`` if given).

    Raises:
        MaskValuesError: (a ValueError) for sparse values, as above.
        ValueError: for float masks, negative values, every pixel ignored, an
            ``ignore_index`` that is one of the classes, or values at or above
            ``n_classes`` (naming them, the files and the share of pixels).

    Example:
        >>> mask_classes([np.array([[0, 1], [2, 2]]), np.array([[0, 3]])])
        4
        >>> mask_classes([np.array([[0, 1, 255]])], ignore_index=255)
        2
        >>> mask_classes([np.array([[0, 15, 15]])], n_classes=21)  # sparse, but said
        21
        >>> mask_classes([np.array([[0, 128]])])
        Traceback (most recent call last):
        ...
        keras_unet.datasets.MaskValuesError: the mask masks[0] has the values 0, 128, which as class indices make 129 classes, 127 of them never used. They look like binary masks of 0 and 128: pass threshold=64 to read the pixels above 64 as 1
    """
    names = [f"masks[{i}]" for i in range(len(masks))] if names is None else list(names)
    if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(
            n_classes, (int, np.integer)) or n_classes < 2):
        raise ValueError(f"n_classes must be an integer >= 2 (or None to count the classes "
                         f"from the masks); got {n_classes!r}")
    if n_classes is not None and ignore_index is not None and ignore_index < n_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is one of the n_classes={n_classes} classes (0 to "
            f"{n_classes - 1}): the ignored value must be above every class (e.g. "
            f"ignore_index=255)")
    counts, held = {}, []
    for name, mask in zip(names, masks):
        mask = np.asarray(mask)
        if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
            raise ValueError(
                f"{name} has {mask.dtype} values; mask_classes counts the classes of "
                f"class-index (integer) masks, a float mask is binary"
            )
        own = _value_counts(mask)
        if own and min(own) < 0:
            raise ValueError(f"{name}: class indices must be >= 0; found {min(own)}")
        own.pop(ignore_index, None)
        for value, n in own.items():
            counts[value] = counts.get(value, 0) + n
        held.append((name, set(own)))
    if not counts:
        raise ValueError(f"every pixel of the masks is ignore_index={ignore_index}: no class")
    values = sorted(counts)
    if n_classes is not None:
        return _within(counts, held, n_classes, ignore_index)
    if ignore_index is not None and ignore_index < values[-1]:
        raise ValueError(
            f"ignore_index={ignore_index} is below the class {values[-1]} of the masks: "
            f"the ignored value must be above every class (e.g. ignore_index=255)"
        )
    if _too_sparse(values):
        stray = {v for v in values if v >= len(values)}
        files = [name for name, own in held if own & stray]
        where, verb = _files_text(files)
        advice, fix = _fix_for(counts)
        n = values[-1] + 1
        raise MaskValuesError(
            f"{where} {verb} the values {_values_text(values)}, which as class indices make "
            f"{n} classes, {n - len(values)} of them never used. {advice}",
            values=values, files=files, fix=fix)
    return max(int(values[-1]) + 1, 2)


def _within(counts, held, n_classes, ignore_index):
    """``n_classes`` if every value of ``counts`` (``{value: pixels}``) is a class below
    it; else the error of :func:`mask_classes` naming the values above."""
    above = [v for v in sorted(counts) if v >= n_classes]
    if not above:
        return int(n_classes)
    files = [name for name, own in held if own & set(above)]
    where, verb = _files_text(files)
    share = 100 * sum(counts[v] for v in above) / sum(counts.values())
    share = f"{share:.0f}%" if share >= 1 else f"{share:.1g}%"
    classes = "0 and 1" if n_classes == 2 else f"0 to {n_classes - 1}"
    void = "" if ignore_index is not None or len(above) > 1 else (
        f", or ignore_index={above[0]} if {above[0]} marks unlabelled pixels")
    raise ValueError(
        f"{where} {verb} the values {_values_text(sorted(counts))}, but n_classes="
        f"{n_classes} makes the classes {classes}: the pixels of "
        f"{_values_text(above)} ({share} of them) would be left out of training and "
        f"scores. Pass n_classes={above[-1] + 1}{void}")


def check_not_empty(masks, ignore_index=None):
    """A one-line warning if every mask is all background, else None.

    A mask set with no foreground pixel (nothing above 0, ``ignore_index`` not
    counted) trains a model to predict nothing: the caller should say so (the
    ``keras-unet`` command warns) or stop.

    Example:
        >>> check_not_empty([np.zeros((2, 2)), np.zeros((2, 2))])
        'every mask is all background (2 masks, no pixel above 0): a model trained on them learns to predict nothing; check the masks and mask_mode'
        >>> check_not_empty([np.zeros((2, 2)), np.eye(2)]) is None
        True
    """
    for mask in masks:
        mask = np.asarray(mask)
        if np.any((mask > 0) & (mask != ignore_index) if ignore_index is not None else mask > 0):
            return None
    ignored = "" if ignore_index is None else f" but ignore_index={ignore_index}"
    return (f"every mask is all background ({_count(masks, 'mask')}, no pixel above 0"
            f"{ignored}): a model trained on them learns to predict nothing; check the "
            f"masks and mask_mode")


# ---------------------------------------------------------------------- folders


def _stack(arrays):
    """One ``(n, ...)`` array if all have one shape, else the list."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return list(arrays)


def image_files(folder, argument="folder"):
    """The image files of ``folder`` as ``{stem: path}``, sorted; hidden files are
    skipped. A missing or empty folder, a file that is not an image, or two images
    with one stem is a ValueError starting with ``argument`` and the folder.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "b.png").write_bytes(b""), (folder / "a.tif").write_bytes(b"")
        >>> image_files(folder)
        {'a': PosixPath('.../a.tif'), 'b': PosixPath('.../b.png')}
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{argument} {folder} is not a folder")
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise ValueError(
            f"{argument} {folder} holds files that are not images: {', '.join(others[:10])} "
            f"(image suffixes: {' '.join(IMAGE_SUFFIXES)})"
        )
    if not files:
        raise ValueError(f"{argument} {folder} holds no images")
    by_stem = {}
    for path in files:
        if path.stem in by_stem:
            raise ValueError(
                f"{argument} {folder} holds two images named {path.stem!r}: "
                f"{by_stem[path.stem].name} and {path.name}"
            )
        by_stem[path.stem] = path
    return by_stem


def pair_files(images_dir, masks_dir, *, names=("images_dir", "masks_dir"),
               unmatched=("images without a mask", "masks without an image")):
    """``[(image, mask)]`` paths matched by file stem; a mask may also be named
    ``<stem>_mask.*``. Unmatched files on either side are a ValueError listing them;
    ``names`` and ``unmatched`` word the messages (e.g. predictions against truths)."""
    images = image_files(images_dir, names[0])
    masks = image_files(masks_dir, names[1])
    pairs, used, lonely = [], set(), []
    for stem, image in images.items():
        found = [s for s in (stem, f"{stem}_mask") if s in masks]
        if len(found) == 2:
            raise ValueError(
                f"the image {image.name} has two masks: {masks[stem].name} and "
                f"{masks[found[1]].name}"
            )
        if found:
            used.add(found[0])
            pairs.append((image, masks[found[0]]))
        else:
            lonely.append(image.name)
    unused = [masks[s].name for s in masks if s not in used]
    if lonely or unused:
        parts = []
        if lonely:
            parts.append(f"{unmatched[0]} in {masks_dir}: {', '.join(lonely[:10])}")
        if unused:
            parts.append(f"{unmatched[1]} in {images_dir}: {', '.join(unused[:10])}")
        raise ValueError("; ".join(parts) + " (pairs are matched by file stem, or <stem>_mask)")
    return pairs


def _check_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(
            f"the image {image_path} is {image.shape[1]}x{image.shape[0]} but its mask "
            f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height)"
        )


def _folder_mode(raw, palette):
    """The one ``mask_mode`` that ``"auto"`` gives a whole folder of masks."""
    if palette is not None:
        return "palette"
    values = set()
    for (gray, _), path in raw:
        if gray is None:
            return "binary"  # _convert_mask names the colour mask
        values.update(_unique(gray, path))
    values = sorted(values)
    if all(_is_binary(_unique(gray, path), gray.dtype) for (gray, _), path in raw):
        return "binary"  # one encoding, or 0/1 and 0/255 mixed: _mixed_binary says so
    if _is_classes(values):
        return "multiclass"
    counts = {}
    for (gray, _), _ in raw:
        for value, n in _value_counts(gray).items():
            counts[value] = counts.get(value, 0) + n
    files = [path for (gray, _), path in raw if not _is_classes(_unique(gray, path))]
    where, verb = _files_text(files)
    advice, fix = _fix_for(counts)
    raise MaskValuesError(
        f"{where} {verb} the values {_values_text(values)}; with mask_mode='auto' masks "
        f"must all be binary (0/255 or 0/1) or class indices below {AUTO_MAX_CLASSES}. "
        f"{advice}", values=values, files=files, fix=fix)


def _mixed_binary(raw, masks_dir):
    """Warn once if binary masks come in two encodings, 0/1 and 0/255 (or 0/65535)."""
    ones, full = [], []
    for (gray, _), path in raw:
        values, top = set(_unique(gray, path)), _full_scale(gray.dtype)
        if top > 1 and top in values:
            full.append(path.name)
        elif 1 in values:
            ones.append(path.name)
    if ones and full:
        def names(files):
            return ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")

        warnings.warn(
            f"{masks_dir} mixes two binary encodings: {_count(ones, 'mask')} 0/1 "
            f"({names(ones)}) and {len(full)} 0/255 ({names(full)}); all are read as "
            f"binary masks of 0 and 1", stacklevel=3)


def _same_channels(images):
    """Gray images repeated to RGB if any image is RGB."""
    if len({image.shape[-1] for image in images}) > 1:
        return [np.repeat(i, 3, axis=-1) if i.shape[-1] == 1 else i for i in images]
    return images


def from_folder(images_dir, masks_dir, *, mask_mode="auto", palette=None, threshold=None,
                ignore_index=None, n_classes=None):
    """Read a folder of images and a folder of masks, paired by file stem.

    A mask pairs with the image of the same stem, whatever its suffix (``cat.jpg``
    with ``cat.png``), or is named ``<stem>_mask.*``. Hidden files (``.DS_Store``)
    are skipped; any other file that is not an image is an error. Images are read with
    :func:`read_image`, masks with :func:`read_mask`; if some images are gray and
    others RGB, the gray ones are repeated to RGB.

    Args:
        images_dir: folder of images (PNG, JPEG, TIFF, BMP, GIF; 8/16-bit; gray, RGB
            or opaque RGBA).
        masks_dir: folder of masks, one per image.
        mask_mode: ``"auto"``, ``"binary"``, ``"multiclass"`` (or ``"classes"``) or
            ``"palette"``, as for :func:`read_mask`; ``"auto"`` decides once for the
            whole folder: binary if every mask is binary, else class indices. A folder
            that mixes 0/1 masks with 0/255 ones is read as binary masks (both
            encodings are unambiguous), with a warning that names the files of each.
        palette: ``{(r, g, b): class}`` for colour-coded masks.
        threshold: for near-binary gray masks (JPEG): the pixels above ``threshold``,
            in each file's own scale (127 for 8-bit), become 1, the rest 0, as for
            :func:`read_mask`.
        ignore_index: the value of unlabelled pixels (e.g. 255): the masks are class
            indices, those pixels keep the value and are not a class.
        n_classes: the number of classes of class-index or palette masks, when the
            masks do not use them all (21 classes, of which the folder uses 0 and 15):
            every value must then be below it (or be ``ignore_index``); None to count
            them, as :func:`mask_classes` does.

    Class-index masks (``"multiclass"``) are checked as a whole with
    :func:`mask_classes`: values that would make classes no mask uses (0/128, a JPEG
    mask's 0-12 and 240-255, a 255 border without ``ignore_index``) are a
    :class:`MaskValuesError` naming the files and what to pass.

    Returns:
        a :class:`Split` (``fov`` None), in the sorted order of the image stems.

    Raises:
        ValueError: naming the file(s): a missing folder, an empty folder, a file that
            is not an image, an image without a mask or a mask without an image, an
            image and mask of different sizes, an unreadable or animated image, mask
            values that do not fit ``mask_mode`` (a :class:`MaskValuesError`), a
            colour not in ``palette``.

    Example:
        >>> import tempfile, numpy as np
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> Image.fromarray(np.full((4, 6), 128, np.uint8)).save(root / "images/a.png")
        >>> Image.fromarray(np.eye(4, 6, dtype=np.uint8) * 255).save(root / "masks/a.png")
        >>> split = from_folder(root / "images", root / "masks")
        >>> split.images.shape, split.masks.shape, split.masks.dtype, split.names
        ((1, 4, 6, 1), (1, 4, 6, 1), dtype('float32'), ['a'])
        >>> border = np.eye(4, 6, dtype=np.uint8)
        >>> border[0] = 255  # unlabelled pixels
        >>> Image.fromarray(border).save(root / "masks/a.png")
        >>> split = from_folder(root / "images", root / "masks", ignore_index=255)
        >>> split.masks.dtype, np.unique(split.masks).tolist()
        (dtype('int32'), [0, 1, 255])
    """
    mode = _check_mode(mask_mode, palette, threshold, ignore_index)
    pairs = pair_files(images_dir, masks_dir)
    raw = [(_mask_pixels(mask_path), mask_path) for _, mask_path in pairs]
    if mode == "auto":
        mode = _folder_mode(raw, palette)
    images, masks = [], []
    for (image_path, mask_path), ((gray, colours), _) in zip(pairs, raw):
        image = read_image(image_path)
        mask = _convert_mask(gray, colours, mode, palette, mask_path, threshold)
        _check_size(image, mask, image_path, mask_path)
        images.append(image)
        masks.append(mask)
    if mode == "binary" and threshold is None:
        _mixed_binary(raw, masks_dir)
    if mode == "multiclass" or (mode == "palette" and n_classes is not None):
        mask_classes(masks, ignore_index, names=[path for _, path in pairs],
                     n_classes=n_classes)
    names = [image_path.stem for image_path, _ in pairs]
    return Split(_stack(_same_channels(images)), _stack(masks), names)


# ------------------------------------------------------------------ ISBI 2012 EM


def _require(folder, entries, dataset):
    missing = [e for e in entries if not (Path(folder) / e).exists()]
    if missing:
        raise ValueError(
            f"data_dir {folder} is not a {dataset} folder: it lacks {', '.join(missing)}"
        )


def load_isbi2012(data_dir=None):
    """The ISBI 2012 EM segmentation challenge data: neuronal membranes in serial
    electron microscopy of the Drosophila larva ventral nerve cord, the U-Net
    paper's first task.

    30 training slices with masks and 30 test slices without (the challenge never
    released them), 512x512 gray. Mask 1 = cell interior, 0 = membrane (about 78% of
    the pixels are 1); to train on "membrane = 1", use ``1 - masks``.

    Args:
        data_dir: a local copy with ``images/NN.png``, ``masks/NN.png`` (0/255) and
            ``test_images/NN.png``. None: download (about 20 MB, once) into
            ``cache_dir("isbi2012_em")`` from zhixuhao/unet's copy, each file checked
            against its SHA-256.

    Returns:
        ``(train, test)`` :class:`Split` s: train images and masks
        ``(30, 512, 512, 1)`` float32; test masks None.

    Example:
        >>> import tempfile, numpy as np
        >>> root = Path(tempfile.mkdtemp())
        >>> for folder in ("images", "masks", "test_images"):
        ...     (root / folder).mkdir()
        ...     Image.fromarray(np.full((8, 8), 255, np.uint8)).save(root / folder / "00.png")
        >>> train, test = load_isbi2012(root)
        >>> train.images.shape, float(train.masks.mean()), test.masks, test.names
        ((1, 8, 8, 1), 1.0, None, ['00'])
    """
    folder = Path(data_dir) if data_dir is not None else fetch("isbi2012_em")
    _require(folder, ("images", "masks", "test_images"), "ISBI 2012")
    train = from_folder(folder / "images", folder / "masks", mask_mode="binary")
    files = image_files(folder / "test_images", "test_images")
    test = Split(_stack([read_image(p) for p in files.values()]), None, list(files))
    return train, test


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
        image = read_image(image_path)
        fov = read_mask(fov_path, "binary")
        _check_size(image, fov, image_path, fov_path)
        images.append(image)
        fovs.append(fov)
        if mask_path is not None:
            masks.append(read_mask(mask_path, "binary"))
            _check_size(image, masks[-1], image_path, mask_path)
    names = [name for name, *_ in triples]
    return Split(_stack(images), _stack(masks) if masks else None, names, _stack(fovs))


def _drive_flat(folder):
    with open(folder / "splits.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"filename", "split"} <= set(rows[0]):
        raise ValueError(f"{folder / 'splits.csv'} must have the columns filename,split")
    splits = []
    for split in ("train", "test"):
        files = [row["filename"] for row in rows if row["split"] == split]
        if not files:
            raise ValueError(f"{folder / 'splits.csv'} lists no {split!r} files")
        splits.append(
            _drive_split(
                [
                    (Path(f).stem, folder / "images" / f, folder / "masks" / f,
                     folder / "fov_masks" / f)
                    for f in files
                ]
            )
        )
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


def _drive_layout(folder):
    """The reader for ``folder``'s DRIVE layout and the folder it applies to, or None."""
    folder = Path(folder)
    if (folder / "splits.csv").is_file():
        return _drive_flat, folder
    for root in (folder, folder / "DRIVE"):
        if (root / "training").is_dir() and (root / "test").is_dir():
            return _drive_original, root
    return None


def load_drive(data_dir=None):
    """DRIVE (Staal et al. 2004): retinal vessel segmentation in 40 colour fundus
    photographs, 565x584, with the first observer's vessel masks and the camera's
    circular field-of-view (FOV) masks. Official split: 21-40 train, 01-20 test.

    DRIVE is handed out after registration at https://drive.grand-challenge.org/, so
    it is never downloaded here: download it yourself, then pass ``data_dir`` or
    unpack it into ``cache_dir("drive")``.

    Args:
        data_dir: one of two layouts. DRIVE's own: ``training/`` and ``test/`` (also
            under ``DRIVE/``), each with ``images/NN_<split>.tif``, ``mask/NN_<split>
            _mask.gif`` and ``1st_manual/NN_manual1.gif`` (the test set's may be
            missing: its masks are then None). Or flat: ``images/NN.png``,
            ``masks/NN.png``, ``fov_masks/NN.png`` (0/255) and ``splits.csv`` with
            the columns ``filename,split``. None: ``cache_dir("drive")``.

    Returns:
        ``(train, test)`` :class:`Split` s; images ``(20, 584, 565, 3)``, masks
        (1 = vessel) and ``fov`` (1 = inside the FOV) ``(20, 584, 565, 1)`` float32.
        Scores are usually computed inside the FOV only.

    Raises:
        FileNotFoundError: with ``data_dir=None`` and no copy in the cache, saying
            where to get DRIVE and where to put it.
        ValueError: if ``data_dir`` holds neither layout, or a file is missing or bad.

    Example:
        >>> import tempfile, numpy as np
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
    layout = _drive_layout(folder)
    if layout is None:
        if data_dir is None:
            raise FileNotFoundError(DRIVE_HELP.format(folder=folder))
        raise ValueError(
            f"data_dir {folder} holds no DRIVE copy: expected training/ and test/ (or "
            f"DRIVE/training/ and DRIVE/test/), or splits.csv with images/, masks/ and "
            f"fov_masks/"
        )
    reader, root = layout
    return reader(root)


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
    channels = [
        np.asarray(Image.fromarray(array[..., c]).resize((width, height), Image.BILINEAR))
        for c in range(array.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 1)


def _read_pet(folder, name, image_size):
    image = read_image(folder / "images" / f"{name}.jpg")
    trimap = read_mask(folder / "annotations" / "trimaps" / f"{name}.png", "classes")
    _check_size(image, trimap, f"{name}.jpg", f"{name}.png")
    if trimap.min() < 1 or trimap.max() > 3:
        raise ValueError(f"trimap {name}.png has values outside 1, 2, 3")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    mask = _TRIMAP_TO_CLASS[trimap]
    if image_size is not None:
        image, mask = _resize(image, image_size, False), _resize(mask, image_size, True)
    return image, mask


def _pets_split(folder, list_name, image_size):
    images, masks, names, skipped = [], [], [], []
    for name in _pet_names(folder / "annotations" / list_name):
        try:
            image, mask = _read_pet(folder, name, image_size)
        except ValueError as error:
            # named inside the dataset's folder: a notebook keeps the warning
            skipped.append(f"{name} ({str(error).replace(f'{folder}{os.sep}', '')})")
            continue
        images.append(image)
        masks.append(mask)
        names.append(name)
    if skipped:
        warnings.warn(
            f"Oxford-IIIT Pet {list_name}: skipped {len(skipped)} unreadable image(s): "
            + "; ".join(skipped),
            stacklevel=3,
        )
    if not images:
        raise ValueError(f"no readable image listed in {folder / 'annotations' / list_name}")
    return Split(_stack(images), _stack(masks), names)


def load_oxford_pets(data_dir=None, *, image_size=None):
    """The Oxford-IIIT Pet dataset (Parkhi et al. 2012): 7349 photos of 37 breeds of
    cats and dogs with pixel trimaps, as a 3-class segmentation task.

    Classes (int32): 0 = background, 1 = pet, 2 = border (the trimap's uncertain
    outline); see ``PET_CLASSES``. The split is the dataset's own: ``trainval.txt``
    (3680) and ``test.txt`` (3669). Gray images are repeated to RGB; images that cannot
    be read as opaque RGB (or lack a valid trimap) are skipped with a warning naming
    them.

    Args:
        data_dir: a local copy, where ``images.tar.gz`` and ``annotations.tar.gz``
            were unpacked: ``images/<name>.jpg``, ``annotations/trimaps/<name>.png``,
            ``annotations/trainval.txt`` and ``annotations/test.txt``. None: download
            both archives (about 810 MB, once) into ``cache_dir("oxford_pets")``.
        image_size: ``(height, width)`` to resize every image (bilinear) and mask
            (nearest) to, giving stacked arrays. The images differ in size (mostly
            about 500x375) and all of them at full size take about 16 GB as float32,
            so a size such as ``(128, 128)`` is the practical choice.

    Returns:
        ``(train, test)`` :class:`Split` s: images float32 RGB and masks int32
        ``(h, w, 1)``, listed (or stacked with ``image_size``).

    Example:
        >>> import tempfile, numpy as np
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "annotations/trimaps").mkdir(parents=True)
        >>> Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(root / "images/cat_1.jpg")
        >>> Image.fromarray(np.array([[1, 3, 2, 2]] * 6, np.uint8)).save(
        ...     root / "annotations/trimaps/cat_1.png")
        >>> for list_name in ("trainval.txt", "test.txt"):
        ...     _ = (root / "annotations" / list_name).write_text("cat_1 1 1 1\\n")
        >>> train, test = load_oxford_pets(root)
        >>> train.images.shape, train.masks[0, 0, :, 0].tolist()
        ((1, 6, 4, 3), [1, 2, 0, 0])
    """
    if image_size is not None and not (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)
    ):
        raise ValueError(
            f"image_size must be (height, width), positive integers; got {image_size!r}"
        )
    folder = Path(data_dir) if data_dir is not None else fetch("oxford_pets")
    _require(folder, ("images", "annotations/trimaps"), "Oxford-IIIT Pet")
    return tuple(_pets_split(folder, n, image_size) for n in ("trainval.txt", "test.txt"))


# ------------------------------------------------------------------ synthetic cells

#: Mean distance in pixels between the centres of neighbouring synthetic cells.
CELL_SPACING = 32
#: Smaller pieces of a synthetic cell (in pixels, cut off by a bent border) are filled
#: with membrane.
MIN_CELL_AREA = 16
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
    """Synthetic EM-like images of touching cells separated by thin dark membranes,
    with masks and instance labels: a segmentation task like ISBI 2012 that needs no
    download and that a small U-Net learns in about a minute on a CPU.

    Each image is a warped Voronoi tiling of about ``(size / 32)**2`` cells (jittered
    grid, some merged, so sizes vary), membranes 1 to 3 pixels wide on every cell
    border, cells of varied brightness with smooth texture and a few dark round
    vesicles (which are not membrane), a slight blur and Gaussian noise.

    Args:
        n: number of images, >= 1.
        size: height and width in pixels, >= 32.
        seed: random seed; the same seed gives the same images.

    Returns:
        ``(images, masks, labels)``: images float32 ``(n, size, size, 1)`` in [0, 1];
        masks float32 ``(n, size, size, 1)``, 1 = cell interior, 0 = membrane; labels
        int32 ``(n, size, size)``, cells numbered 1..k in each image, 0 = membrane.
        The cells are exactly the 4-connected regions of the mask, so
        :func:`keras_unet.weights.border_weight_map` finds them from the mask alone.

    Example:
        >>> images, masks, labels = synthetic_cells(2, size=64, seed=0)
        >>> images.shape, masks.dtype, labels.dtype
        ((2, 64, 64, 1), dtype('float32'), dtype('int32'))
        >>> bool(images[masks == 0].mean() < images[masks == 1].mean() - 0.2)
        True
    """
    for value, argument, minimum in ((n, "n", 1), (size, "size", 32)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{argument} must be an integer >= {minimum}; got {value!r}")
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
