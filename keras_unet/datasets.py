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
import os
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image
from scipy import ndimage, spatial

from keras_unet.images import (Split, check_same_size, from_folder, image_files, locked, read_image,
                               read_mask, stack_or_list, write_atomically)

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
    test = Split(stack_or_list([read_image(p) for p in files.values()]), None, list(files))
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
        check_same_size(image, fov, image_path, fov_path)
        images.append(image)
        fovs.append(fov)
        if mask_path is not None:
            masks.append(read_mask(mask_path, "binary"))
            check_same_size(image, masks[-1], image_path, mask_path)
    names = [name for name, *_ in triples]
    return Split(stack_or_list(images), stack_or_list(masks) if masks else None, names, stack_or_list(fovs))


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
    return Split(stack_or_list(images), stack_or_list(masks), names)


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
