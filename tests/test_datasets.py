"""keras_unet.datasets: loaders on the real data, downloads against a loopback HTTP
server, synthetic cells (the image and mask readers: tests/test_images.py).

Nothing here touches the internet: downloads are served from 127.0.0.1.
"""

import io
import multiprocessing
import os
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from keras_unet import datasets
from keras_unet.datasets import DownloadError
from keras_unet.images import Split

from archives import (PETS, PETS_TRAINVAL, LoopbackServer, add_to_tar, make_pets_archives,
                      pet_trimap, serve_pets_mirror, sha256)

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)

# --------------------------------------------------------------------- helpers

@pytest.fixture
def server():
    server = LoopbackServer()
    yield server
    server.close()

@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, as $KERAS_UNET_DATA."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KERAS_UNET_DATA", str(folder))
    return folder

def _toy(monkeypatch, server, entries):
    """Register the dataset "toy" served by ``server`` under ``toy/``."""
    monkeypatch.setitem(datasets.BASE_URLS, "toy", server.url + "toy/")
    monkeypatch.setitem(datasets.REGISTRY, "toy", entries)

def _entry(filename, sha, kind="file"):
    """A registry entry served as ``toy/<filename>``."""
    return {"url": filename, "sha256": sha, "filename": filename, "kind": kind}

def _left_in(folder):
    """Every path under ``folder``, relative, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))

# --------------------------------------------------------------- real: ISBI 2012

@pytest.fixture(scope="module")
def isbi(shared_data):
    return datasets.load_isbi2012(shared_data / "isbi2012_em")

def test_isbi2012_real_data(isbi):
    train, test = isbi
    assert isinstance(train, Split)
    assert train.images.shape == train.masks.shape == (30, 512, 512, 1)
    assert test.images.shape == (30, 512, 512, 1) and test.masks is None
    assert train.images.dtype == train.masks.dtype == test.images.dtype == np.float32
    assert train.names == test.names == [f"{i:02d}" for i in range(30)]
    assert train.fov is None and test.fov is None
    assert np.unique(train.masks).tolist() == [0.0, 1.0]
    assert 0 <= train.images.min() and train.images.max() <= 1
    # PROVENANCE.md: cell interior (255 -> 1) covers 73.0-83.2% of each mask, 78.0% on average
    fractions = train.masks.mean(axis=(1, 2, 3))
    assert fractions.mean() == pytest.approx(0.7804, abs=1e-4)
    assert 0.729 < fractions.min() and fractions.max() < 0.833
    assert train.images[0].mean() == pytest.approx(137.22007751 / 255, abs=1e-6)
    assert test.images[0].mean() == pytest.approx(148.85033035 / 255, abs=1e-6)
    # membranes are dark: the mean image on membrane pixels is far below cell interiors
    assert train.images[train.masks == 0].mean() < train.images[train.masks == 1].mean() - 0.15

# ------------------------------------------------------------------ real: DRIVE

@pytest.fixture(scope="module")
def drive(shared_data):
    return datasets.load_drive(shared_data / "drive")

def test_drive_real_data(drive):
    train, test = drive
    assert train.names == [str(i) for i in range(21, 41)]
    assert test.names == [f"{i:02d}" for i in range(1, 21)]
    for split in (train, test):
        assert split.images.shape == (20, 584, 565, 3)
        assert split.masks.shape == split.fov.shape == (20, 584, 565, 1)
        assert {split.images.dtype, split.masks.dtype, split.fov.dtype} == {np.dtype("float32")}
        assert np.unique(split.masks).tolist() == np.unique(split.fov).tolist() == [0.0, 1.0]
    # PROVENANCE.md: vessels 6.0-11.6% of each image (8.7% on average), FOV about 68.8%
    vessels = np.concatenate([train.masks, test.masks]).mean(axis=(1, 2, 3))
    assert vessels.mean() == pytest.approx(0.0869, abs=5e-4)
    assert 0.059 < vessels.min() and vessels.max() < 0.117
    assert np.concatenate([train.fov, test.fov]).mean() == pytest.approx(0.688, abs=1e-3)
    assert test.images[0].mean() == pytest.approx(77.12916111 / 255, abs=1e-6)  # 01.png
    # the fundus is red: R > G > B inside the field of view
    inside = train.images[train.fov[..., 0] == 1]
    red, green, blue = inside.mean(axis=0)
    assert red > green > blue

def _write_original_drive(root, shared_drive, names, with_test_manual=True):
    """DRIVE's own layout (TIFF images, GIF masks) for a few images of the shared copy."""
    for name in names:
        sub = "training" if int(name) > 20 else "test"
        for folder in ("images", "1st_manual", "mask"):
            (root / sub / folder).mkdir(parents=True, exist_ok=True)
        Image.open(shared_drive / "images" / f"{name}.png").save(
            root / sub / "images" / f"{name}_{sub}.tif"
        )
        if sub == "training" or with_test_manual:
            Image.open(shared_drive / "masks" / f"{name}.png").save(
                root / sub / "1st_manual" / f"{name}_manual1.gif"
            )
        Image.open(shared_drive / "fov_masks" / f"{name}.png").save(
            root / sub / "mask" / f"{name}_{sub}_mask.gif"
        )
    if not with_test_manual:
        (root / "test" / "1st_manual").rmdir()

def test_drive_original_layout_matches_flat_copy(tmp_path, shared_data, drive):
    _write_original_drive(tmp_path / "DRIVE", shared_data / "drive", ["21", "22", "01"])
    train, test = datasets.load_drive(tmp_path)  # finds DRIVE/ inside
    assert train.names == ["21", "22"] and test.names == ["01"]
    flat_train, flat_test = drive
    np.testing.assert_array_equal(train.images, flat_train.images[:2])
    np.testing.assert_array_equal(train.masks, flat_train.masks[:2])
    np.testing.assert_array_equal(train.fov, flat_train.fov[:2])
    np.testing.assert_array_equal(test.masks, flat_test.masks[:1])
    assert test.fov.shape == (1, 584, 565, 1)

def test_drive_without_test_labels_and_from_cache(tmp_path, shared_data, cache):
    # the grand-challenge download has no test vessel masks; unpacked into the cache
    _write_original_drive(cache / "drive", shared_data / "drive", ["23", "02"], False)
    train, test = datasets.load_drive()
    assert train.masks.shape == (1, 584, 565, 1)
    assert test.masks is None and test.fov.shape == (1, 584, 565, 1)

def test_drive_not_downloaded_says_where_to_get_it(cache):
    with pytest.raises(FileNotFoundError) as error:
        datasets.load_drive()
    message = str(error.value)
    assert "https://drive.grand-challenge.org/" in message and "regist" in message
    assert str(cache / "drive") in message and "data_dir=" in message

def test_drive_data_dir_without_drive(tmp_path):
    with pytest.raises(ValueError, match="holds no DRIVE copy"):
        datasets.load_drive(tmp_path)

# ----------------------------------------------------------------------- downloads

def test_isbi2012_download_from_loopback(shared_data, server, cache, monkeypatch, isbi, capsys):
    local = shared_data / "isbi2012_em"
    remote = {"images": "train/image", "masks": "train/label", "test_images": "test"}
    for folder, path in remote.items():
        for i in range(30):
            data = (local / folder / f"{i:02d}.png").read_bytes()
            server.files[f"membrane/{path}/{i}.png"] = data
    monkeypatch.setitem(datasets.BASE_URLS, "isbi2012", server.url + "membrane/")

    train, test = datasets.load_isbi2012()  # the registry's 90 SHA-256 values verified
    assert len(server.requests) == 90 and "Downloading" in capsys.readouterr().out
    np.testing.assert_array_equal(train.images, isbi[0].images)
    np.testing.assert_array_equal(train.masks, isbi[0].masks)
    np.testing.assert_array_equal(test.images, isbi[1].images)
    assert (cache / "isbi2012_em" / ".complete").exists()
    assert not [p for p in _left_in(cache) if p.endswith(".part")]

    datasets.load_isbi2012()  # from the cache: no request
    assert len(server.requests) == 90

    # an interrupted download (no .complete) is resumed: only the missing files come
    (cache / "isbi2012_em" / ".complete").unlink()
    (cache / "isbi2012_em" / "masks" / "07.png").unlink()
    datasets.load_isbi2012()
    assert server.requests[90:] == ["membrane/train/label/7.png"]

def test_download_wrong_checksum_is_refused(server, cache, monkeypatch):
    server.files["toy/blob.bin"] = b"x" * 1000
    wrong = sha256(b"y" * 1000)
    _toy(monkeypatch, server, [_entry("blob.bin", wrong)])
    with pytest.raises(DownloadError) as error:
        datasets.fetch("toy", progress=False)
    message = str(error.value)
    assert server.url + "toy/blob.bin" in message
    assert wrong in message and sha256(b"x" * 1000) in message
    assert _left_in(cache) == [".toy.lock"]

def test_download_cut_off_is_refused(server, cache, monkeypatch):
    data = bytes(range(256)) * 4000
    server.files["toy/blob.bin"] = data
    server.cut.add("toy/blob.bin")
    _toy(monkeypatch, server, [_entry("blob.bin", sha256(data))])
    message = (r"could not download http://127\.0\.0\.1:\d+/toy/blob\.bin: "
               r".*512000 out of 1024000 bytes")
    with pytest.raises(DownloadError, match=message):
        datasets.fetch("toy", progress=False)
    assert _left_in(cache) == [".toy.lock"]

def test_download_http_error_names_the_url(server, cache, monkeypatch):
    _toy(monkeypatch, server, [_entry("gone.bin", "0" * 64)])
    message = r"could not download http://127\.0\.0\.1:\d+/toy/gone\.bin: HTTP Error 404"
    with pytest.raises(DownloadError, match=message):
        datasets.fetch("toy", progress=False)
    assert _left_in(cache) == [".toy.lock"]

@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    """The process's umask set to the parameter for the test, then restored."""
    saved = os.umask(request.param)
    yield request.param
    os.umask(saved)

def test_downloaded_file_gets_the_umask_mode(server, cache, monkeypatch, umask):
    server.files["toy/blob.bin"] = b"x" * 1000
    _toy(monkeypatch, server, [_entry("blob.bin", sha256(b"x" * 1000))])
    folder = datasets.fetch("toy", progress=False)
    assert oct((folder / "blob.bin").stat().st_mode & 0o777) == oct(0o666 & ~umask)

def _tar_bytes(members):
    """A .tar.gz of ``members``: (name, data) files or (name, "->", target) symlinks
    or (name, "=>", target) hard links."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in members:
            if len(member) == 2:
                add_to_tar(tar, *member)
            else:
                info = tarfile.TarInfo(member[0])
                info.type = tarfile.SYMTYPE if member[1] == "->" else tarfile.LNKTYPE
                info.linkname = member[2]
                tar.addfile(info)
    return out.getvalue()

def _zip_bytes(members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()

def test_download_archive_zip_and_tar(server, cache, monkeypatch):
    tar = _tar_bytes(
        [("data/a.txt", b"alpha"), ("data/sub/b.txt", b"beta"), ("data/link", "->", "a.txt")]
    )
    zipped = _zip_bytes([("more/c.txt", b"gamma")])
    server.files.update({"toy/a.tar.gz": tar, "toy/c.zip": zipped})
    entries = [_entry("a.tar.gz", sha256(tar), "tar"), _entry("c.zip", sha256(zipped), "zip")]
    _toy(monkeypatch, server, entries)
    # a half-extracted folder from an earlier run (no markers) is not taken as done
    (cache / "toy" / "data").mkdir(parents=True)
    (cache / "toy" / "data" / "partial.txt").write_text("half")
    folder = datasets.fetch("toy", progress=False)
    assert _left_in(folder) == [
        ".a.tar.gz.extracted", ".c.zip.extracted", ".complete",
        "data", "data/a.txt", "data/link", "data/sub", "data/sub/b.txt", "more", "more/c.txt",
    ]  # the archives were deleted once unpacked
    assert (folder / "data" / "link").read_text() == "alpha"
    assert datasets.fetch("toy", progress=False) == folder and len(server.requests) == 2

UNSAFE = {
    "dotdot": ("tar", [("data/ok.txt", b"ok"), ("data/../../evil.txt", b"evil")], "../evil.txt"),
    "absolute": ("tar", [("/tmp/evil.txt", b"evil")], "/tmp/evil.txt"),
    "symlink": ("tar", [("data/link", "->", "../../evil.txt")], "data/link -> ../../evil.txt"),
    "symlink_absolute": ("tar", [("link", "->", "/etc/passwd")], "link -> /etc/passwd"),
    "hardlink": ("tar", [("data/hard", "=>", "../evil.txt")], "data/hard -> ../evil.txt"),
    "zip_dotdot": ("zip", [("ok.txt", b"ok"), ("../evil.txt", b"evil")], "../evil.txt"),
}

@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_download_unsafe_archive_is_refused(case, server, cache, monkeypatch, tmp_path):
    kind, members, shown = UNSAFE[case]
    data = _tar_bytes(members) if kind == "tar" else _zip_bytes(members)
    server.files["toy/bad.archive"] = data
    _toy(monkeypatch, server, [_entry("bad.archive", sha256(data), kind)])
    with pytest.raises(ValueError, match="unsafe archive") as error:
        datasets.fetch("toy", progress=False)
    assert repr(shown)[1:-1] in str(error.value)
    assert _left_in(cache) == [".toy.lock"]  # nothing extracted, archive deleted
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()

def _fetch_in_child(cache, base_url, entries, start, results):
    """Run in a fresh process: when both are ready, fetch the dataset "toy"; put the
    SHA-256 of its file in ``results``."""
    os.environ["KERAS_UNET_DATA"] = cache
    datasets.BASE_URLS["toy"] = base_url
    datasets.REGISTRY["toy"] = entries
    start.wait()
    folder = datasets.fetch("toy", progress=False)
    results.put(sha256((folder / "blob.bin").read_bytes()))

def test_download_two_processes_at_once(server, cache):
    data = np.random.default_rng(0).bytes(1 << 20)
    server.files["toy/blob.bin"] = data
    server.delay = 0.05  # 16 chunks: the transfer takes about 0.8 s, the two overlap
    entries = [_entry("blob.bin", sha256(data))]
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    args = (str(cache), server.url + "toy/", entries, start, results)
    processes = [context.Process(target=_fetch_in_child, args=args) for _ in range(2)]
    for process in processes:
        process.start()
    outcome = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert outcome == [sha256(data)] * 2
    assert server.requests == ["toy/blob.bin"]  # the second waited and found it complete
    assert _left_in(cache) == [".toy.lock", "toy", "toy/.complete", "toy/blob.bin"]

def test_fetch_unknown_name():
    message = ("name must be one of 'Task01_BrainTumour', 'Task02_Heart', .*, 'Task10_Colon', "
               "'isbi2012', 'oxford_pets'; got 'pets'")
    with pytest.raises(ValueError, match=message):
        datasets.fetch("pets")

def test_registry_checksums():
    isbi = datasets.REGISTRY["isbi2012"]
    assert len(isbi) == 90 and len({e["sha256"] for e in isbi}) == 90
    assert {e["filename"]: e["url"] for e in isbi}["test_images/29.png"] == "test/29.png"
    pets = {e["filename"]: e["sha256"] for e in datasets.REGISTRY["oxford_pets"]}
    assert pets == {  # tensorflow_datasets/url_checksums/oxford_iiit_pet.txt
        "images.tar.gz": "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        "annotations.tar.gz": "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
    }

# --------------------------------------------------------------------- Oxford pets

def test_oxford_pets_download_and_load(tmp_path, server, cache, monkeypatch):
    served = tmp_path / "served"
    checksums = make_pets_archives(served)
    for name in checksums:
        server.files[f"pets/{name}"] = (served / name).read_bytes()
    monkeypatch.setitem(datasets.BASE_URLS, "oxford_pets", server.url + "pets/")
    registry = [dict(e, sha256=checksums[e["filename"]]) for e in datasets.REGISTRY["oxford_pets"]]
    monkeypatch.setitem(datasets.REGISTRY, "oxford_pets", registry)

    skipped = r"test\.txt: skipped 1 unreadable image\(s\): Egyptian_Mau_14 \("
    with pytest.warns(UserWarning, match=skipped):
        train, test = datasets.load_oxford_pets()
    assert server.requests == ["pets/images.tar.gz", "pets/annotations.tar.gz"]
    assert not list((cache / "oxford_pets").glob("*.tar.gz"))
    assert train.names == PETS_TRAINVAL and test.names == ["Abyssinian_2"]
    assert isinstance(train.images, list)  # sizes differ
    for split in (train, test):
        for name, image, mask in zip(split.names, split.images, split.masks):
            height, width, _ = PETS[name]
            assert image.shape == (height, width, 3) and image.dtype == np.float32
            assert mask.shape == (height, width, 1) and mask.dtype == np.int32
            expected = np.array([-1, 1, 0, 2])[pet_trimap(height, width)]  # 1 pet, 2 bg, 3 border
            np.testing.assert_array_equal(mask[..., 0], expected)
    gray = train.images[1]  # beagle_1: a gray JPEG, repeated to RGB
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])

    with pytest.warns(UserWarning, match="Egyptian_Mau_14"):
        train, test = datasets.load_oxford_pets(image_size=(16, 20))  # from the cache
    assert len(server.requests) == 2
    assert train.images.shape == (3, 16, 20, 3) and train.masks.shape == (3, 16, 20, 1)
    assert set(np.unique(train.masks).tolist()) == {0, 1, 2}
    assert datasets.PET_CLASSES == {"background": 0, "pet": 1, "border": 2}

def test_oxford_pets_bad_image_size(tmp_path):
    with pytest.raises(ValueError, match="image_size must be"):
        datasets.load_oxford_pets(tmp_path, image_size=128)

# ---------------------------------------------------------------- synthetic cells

def test_synthetic_cells_shapes_and_contrast():
    start = time.perf_counter()
    images, masks, labels = datasets.synthetic_cells(64, size=256, seed=0)
    seconds = time.perf_counter() - start
    assert seconds < 5, f"synthetic_cells(64) took {seconds:.1f} s"
    assert images.shape == masks.shape == (64, 256, 256, 1) and labels.shape == (64, 256, 256)
    assert (images.dtype, masks.dtype, labels.dtype) == (np.float32, np.float32, np.int32)
    assert 0 <= images.min() and images.max() <= 1
    assert np.unique(masks).tolist() == [0.0, 1.0]
    # membranes are thin: about 10% of the pixels (ISBI: 22%)
    assert 0.08 < 1 - masks.mean() < 0.12
    # and clearly darker than the cell interiors
    membrane, interior = images[masks == 0].mean(), images[masks == 1].mean()
    assert membrane < 0.35 and interior > 0.65
    # about (256 / 32)**2 = 64 grid cells, 15% merged away
    cells = labels.max(axis=(1, 2))
    assert 50 < cells.mean() < 60 and 40 <= cells.min() and cells.max() <= 64

def test_synthetic_cells_labels_are_the_mask_components():
    images, masks, labels = datasets.synthetic_cells(4, size=128, seed=3)
    np.testing.assert_array_equal(labels > 0, masks[..., 0] == 1)
    for mask, label in zip(masks, labels):
        components, n = ndimage.label(mask[..., 0], FOUR_CONNECTED)
        assert n == label.max() and sorted(np.unique(label).tolist()) == list(range(n + 1))
        np.testing.assert_array_equal(components, label)
        assert np.bincount(label.ravel())[1:].min() >= datasets.MIN_CELL_AREA
    # membranes are 1 to 3 pixels wide: on average (area / skeleton length) about 2.3
    membranes = masks[..., 0] == 0
    widths = [m.sum() / skeletonize(m).sum() for m in membranes]
    assert 1.8 < np.mean(widths) < 2.8

def test_synthetic_cells_deterministic():
    a = datasets.synthetic_cells(3, size=64, seed=7)
    b = datasets.synthetic_cells(3, size=64, seed=7)
    c = datasets.synthetic_cells(3, size=64, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])

@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 2.0}, {"n": 1, "size": 16}])
def test_synthetic_cells_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="must be an integer"):
        datasets.synthetic_cells(**kwargs)

# ------------------------------------------------------- KERAS_UNET_REGISTRY mirrors

def test_registry_file_replaces_a_source(tmp_path, server, cache, monkeypatch):
    """What the tutorials' test set-up does: the real download code, pointed by
    $KERAS_UNET_REGISTRY at small archives with their own checksums."""
    registry = serve_pets_mirror(server, tmp_path, prefix="mirror/")
    monkeypatch.setenv("KERAS_UNET_REGISTRY", str(registry))
    with pytest.warns(UserWarning, match="Egyptian_Mau_14"):
        train, test = datasets.load_oxford_pets(image_size=(16, 16))
    assert server.requests == ["mirror/images.tar.gz", "mirror/annotations.tar.gz"]
    assert train.names == PETS_TRAINVAL and train.images.shape == (3, 16, 16, 3)
    # datasets it does not list keep the built-in source
    assert datasets._source("isbi2012") == (datasets.BASE_URLS["isbi2012"],
                                               datasets.REGISTRY["isbi2012"])

@pytest.mark.parametrize("text, message", [
    ("{not json", r"KERAS_UNET_REGISTRY=.*registry\.json: cannot read it as JSON"),
    ('{"oxford_pets": ["x"]}',
     r"KERAS_UNET_REGISTRY=.*: 'oxford_pets' must map to \{\"base_url\": \.\.\., \"files\""),
    ('{"isbi2012_em": {"base_url": "http://127.0.0.1:9/", "files": []}}',  # the old name
     r"KERAS_UNET_REGISTRY=.*: a dataset must be one of 'Task01_BrainTumour', .*"
     r"'Task10_Colon', 'isbi2012', 'oxford_pets'; got 'isbi2012_em'"),
])
def test_bad_registry_file(tmp_path, cache, monkeypatch, text, message):
    registry = tmp_path / "registry.json"
    registry.write_text(text)
    monkeypatch.setenv("KERAS_UNET_REGISTRY", str(registry))
    with pytest.raises(ValueError, match=message):
        datasets.fetch("oxford_pets")
    assert not (cache / "oxford_pets").exists()



def test_loaders_name_every_dataset_and_synthetic_cells_load_like_the_others():
    assert sorted(datasets.LOADERS) == ["drive", "isbi2012", "oxford_pets", "synthetic"]
    train, test = datasets.LOADERS["synthetic"](None, n=3, n_test=2, size=64, seed=5)
    images, masks, _ = datasets.synthetic_cells(5, size=64, seed=5)
    np.testing.assert_array_equal(train.images, images[:3])
    np.testing.assert_array_equal(test.masks, masks[3:])
    np.testing.assert_array_equal(train.images, datasets.synthetic_cells(3, size=64, seed=5)[0])
    assert train.names == ["00", "01", "02"] and test.names == ["03", "04"]
    with pytest.raises(ValueError, match="data_dir must be None for synthetic cells"):
        datasets.load_synthetic("cells/")
