"""keras_unet.datasets: loaders on the real data, downloads against a loopback HTTP
server, the Decathlon's layout, synthetic cells and volumes (the image, mask and volume
readers: tests/test_images.py).

Nothing here touches the internet: downloads are served from 127.0.0.1.
"""

import io
import multiprocessing
import os
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from keras_unet import datasets
from keras_unet.datasets import DownloadError
from keras_unet.images import Split, normalize_intensity

from archives import (PETS, PETS_TRAINVAL, LoopbackServer, add_to_tar, make_msd_archive,
                      make_pets_archives, md5, msd_case, pet_trimap, serve_msd_mirror,
                      serve_pets_mirror, serve_pyradiomics_mirror, sha256)

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
               "'isbi2012', 'oxford_pets', 'tumour_volumes'; got 'pets'")
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
    images, masks, labels = datasets.synthetic_cells(64, size=256, seed=0)
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
     r"'Task10_Colon', 'isbi2012', 'oxford_pets', 'tumour_volumes'; got 'isbi2012_em'"),
])
def test_bad_registry_file(tmp_path, cache, monkeypatch, text, message):
    registry = tmp_path / "registry.json"
    registry.write_text(text)
    monkeypatch.setenv("KERAS_UNET_REGISTRY", str(registry))
    with pytest.raises(ValueError, match=message):
        datasets.fetch("oxford_pets")
    assert not (cache / "oxford_pets").exists()



def test_loaders_name_every_dataset_and_synthetic_cells_load_like_the_others():
    assert sorted(datasets.LOADERS) == ["drive", "isbi2012", "kidney_tumour_ct", "liver_ct",
                                        "lung_cxr", "oxford_pets", "synthetic", "synthetic3d",
                                        "tumour_volumes"]
    train, test = datasets.LOADERS["synthetic"](None, n=3, n_test=2, size=64, seed=5)
    images, masks, _ = datasets.synthetic_cells(5, size=64, seed=5)
    np.testing.assert_array_equal(train.images, images[:3])
    np.testing.assert_array_equal(test.masks, masks[3:])
    np.testing.assert_array_equal(train.images, datasets.synthetic_cells(3, size=64, seed=5)[0])
    assert train.names == ["00", "01", "02"] and test.names == ["03", "04"]
    with pytest.raises(ValueError, match="data_dir must be None for synthetic cells"):
        datasets.load_synthetic("cells/")

# ------------------------------------------------------- Medical Segmentation Decathlon

def test_msd_registry_lists_the_ten_tasks_with_monai_md5s():
    # monai/apps/datasets.py, DecathlonDataset.resource and .md5
    assert list(datasets.MSD_TASKS) == [
        "Task01_BrainTumour", "Task02_Heart", "Task03_Liver", "Task04_Hippocampus",
        "Task05_Prostate", "Task06_Lung", "Task07_Pancreas", "Task08_HepaticVessel",
        "Task09_Spleen", "Task10_Colon"]
    assert datasets.MSD_TASKS["Task04_Hippocampus"] == "9d24dba78a72977dbd1d2e110310f31b"
    assert datasets.MSD_TASKS["Task10_Colon"] == "bad7a188931dc2f6acf72b08eb6202d0"
    for task, checksum in datasets.MSD_TASKS.items():
        assert datasets.REGISTRY[task] == [{"url": f"{task}.tar", "md5": checksum,
                                            "filename": f"{task}.tar", "kind": "tar"}]
        assert datasets.BASE_URLS[task] + f"{task}.tar" == (
            f"https://msd-for-monai.s3-us-west-2.amazonaws.com/{task}.tar")

def _volume(task, index):
    """Case ``index`` of the tiny ``task`` in the package's order: (k, j, i[, m])."""
    image, label = msd_case(task, index)
    return np.transpose(image, (2, 1, 0, 3)[:image.ndim]), np.transpose(label, (2, 1, 0))

def test_msd_download_and_load_from_loopback(tmp_path, server, cache, monkeypatch):
    """Task04_Hippocampus's real layout, downloaded by the real code (its MD5 checked) from
    127.0.0.1 through a KERAS_UNET_REGISTRY file, unpacked into the cache and read."""
    task = "Task04_Hippocampus"
    registry, names = serve_msd_mirror(server, tmp_path, task, n_cases=6)
    monkeypatch.setenv("KERAS_UNET_REGISTRY", str(registry))
    train, test = datasets.load_msd(task)
    assert server.requests == [f"msd/{task}.tar"]
    assert _left_in(cache / task) == sorted([  # unpacked, the archive deleted
        f".{task}.tar.extracted", ".complete", task, f"{task}/._dataset.json",
        f"{task}/dataset.json", f"{task}/imagesTs", f"{task}/imagesTs/hippocampus_999.nii.gz",
        f"{task}/imagesTr", f"{task}/labelsTr",
        *[f"{task}/{sub}/{p}{n}.nii.gz" for sub in ("imagesTr", "labelsTr") for n in names
          for p in ("._", "")]])
    # test: every fifth case of the training list, from the first; the ._ files never read
    assert test.names == ["hippocampus_000", "hippocampus_005"]
    assert train.names == ["hippocampus_001", "hippocampus_002", "hippocampus_003",
                           "hippocampus_004"]
    assert train.images.shape == (4, 5, 6, 7, 1) and train.images.dtype == np.float32
    assert train.masks.shape == (4, 5, 6, 7, 1) and train.masks.dtype == np.int32
    assert train.spacing == [(1.0, 1.0, 1.0)] * 4 and train.fov is None
    for split, indices in ((train, [1, 2, 3, 4]), (test, [0, 5])):
        for image, mask, index in zip(split.images, split.masks, indices):
            raw, label = _volume(task, index)
            np.testing.assert_array_equal(mask[..., 0], label)  # class indices as stored
            np.testing.assert_allclose(image[..., 0], normalize_intensity(raw, "zscore"),
                                       atol=1e-6)  # float32 sums in another order
    assert sorted(np.unique(train.masks).tolist()) == [0, 1, 2]  # Anterior, Posterior
    assert np.unique(test.masks[0]).tolist() == [0, 1]  # case 0 (even): no Posterior
    datasets.load_msd(task)  # from the cache: no request
    assert len(server.requests) == 1

def test_msd_wrong_md5_is_refused_and_nothing_is_left(tmp_path, server, cache, monkeypatch):
    task = "Task04_Hippocampus"
    path, actual, _ = make_msd_archive(tmp_path, task, n_cases=2)
    server.files[f"msd/{task}.tar"] = path.read_bytes()
    wrong = md5(b"another archive")
    monkeypatch.setitem(datasets.BASE_URLS, task, server.url + "msd/")
    monkeypatch.setitem(datasets.REGISTRY, task, [dict(datasets.REGISTRY[task][0], md5=wrong)])
    message = (rf"checksum mismatch for http://127\.0\.0\.1:\d+/msd/{task}\.tar: expected MD5 "
               rf"{wrong}, got {actual}\. The file was deleted")
    with pytest.raises(DownloadError, match=message):
        datasets.load_msd(task)
    assert _left_in(cache) == [f".{task}.lock"]  # no archive, no half-unpacked folder
    assert server.requests == [f"msd/{task}.tar"]

def test_download_refuses_a_checksum_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match=r"the MD5 checksum of http://127\.0\.0\.1:9/x\.tar "
                                         r"must be 32 hex digits; got '"):
        datasets.download("http://127.0.0.1:9/x.tar", "0" * 64, tmp_path / "x", algorithm="md5")
    with pytest.raises(ValueError, match="algorithm must be one of 'sha256', 'md5'; got 'sha1'"):
        datasets.download("http://127.0.0.1:9/x", "0" * 40, tmp_path / "x", algorithm="sha1")
    assert list(tmp_path.iterdir()) == []

def _unpacked(tmp_path, task, n_cases):
    """The tiny ``task`` archive unpacked into ``tmp_path/copy``: the folder holding it."""
    path, _, names = make_msd_archive(tmp_path / "served", task, n_cases)
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "copy", filter="data")
    return tmp_path / "copy", names

def test_msd_multimodal_mri_as_channels(tmp_path):
    task = "Task01_BrainTumour"
    folder, names = _unpacked(tmp_path, task, 3)
    train, test = datasets.load_msd(task, folder)  # the folder holding the task's folder
    assert test.names == names[:1] and train.names == names[1:]
    assert train.images.shape == (2, 4, 6, 8, 4)  # NIfTI (i, j, k, m) -> (k, j, i, m)
    for image, mask, index in zip(train.images, train.masks, (1, 2)):
        raw, label = _volume(task, index)
        np.testing.assert_array_equal(mask[..., 0], label)
        for m in range(4):  # each modality z-scored on its own
            np.testing.assert_allclose(image[..., m], normalize_intensity(raw[..., m], "zscore"),
                                       atol=1e-6)  # float32 sums in another order
    assert sorted(np.unique(train.masks).tolist()) == [0, 1, 2, 3]

def test_msd_ct_window_spacing_and_max_cases(tmp_path):
    task = "Task09_Spleen"
    folder, names = _unpacked(tmp_path, task, 6)
    train, test = datasets.load_msd(task, folder / task, max_cases=2)  # the task's own folder
    assert (train.names, test.names) == (names[1:2], names[:1])
    assert train.spacing == test.spacing == [(5.0, 0.625, 0.75)]  # (k, j, i) mm
    raw, label = _volume(task, 1)
    assert raw.min() == -1000 and train.images.shape == (1, 3, 8, 9, 1)
    np.testing.assert_allclose(train.images[0, ..., 0], normalize_intensity(raw, "abdomen"),
                               atol=1e-6)
    np.testing.assert_array_equal(train.images[0, ..., 0][label == 1], 1.0)  # 300 HU > 240
    np.testing.assert_array_equal(train.images[0, ..., 0][raw == -1000], 0.0)
    assert train.masks[0, ..., 0].tolist() == label.tolist()
    train, _ = datasets.load_msd(task, folder, intensity=(-1000, 1000), max_cases=2)
    np.testing.assert_allclose(train.images[0, ..., 0][label == 1], 0.65)

def test_msd_bad_folders_and_tasks(tmp_path):
    with pytest.raises(ValueError, match=r"task must be one of 'Task01_BrainTumour', "
                                         r"'Task02_Heart', .*'Task10_Colon'; got 'Task11_Spine'"):
        datasets.load_msd("Task11_Spine", tmp_path)
    message = rf"data_dir {tmp_path} is not a Task02_Heart folder: it lacks dataset\.json"
    with pytest.raises(ValueError, match=message):
        datasets.load_msd("Task02_Heart", tmp_path)
    (tmp_path / "dataset.json").write_text('{"name": "Heart", "labels": {"0": "background"}}')
    with pytest.raises(ValueError, match=r"dataset\.json is no Decathlon dataset\.json "
                                         r"\(modality, labels, training of image and label\): "
                                         r"KeyError\('modality'\)"):
        datasets.load_msd("Task02_Heart", tmp_path)
    with pytest.raises(ValueError, match="max_cases must be an integer >= 1; got 0"):
        datasets.load_msd("Task02_Heart", tmp_path, max_cases=0)

def test_msd_mask_on_another_grid_names_both_files(tmp_path):
    task = "Task04_Hippocampus"
    folder, names = _unpacked(tmp_path, task, 1)
    import nibabel
    label = folder / task / "labelsTr" / f"{names[0]}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((7, 6, 4), np.uint8), np.eye(4)), label)
    image = folder / task / "imagesTr" / f"{names[0]}.nii.gz"
    message = (rf"{image} \(5, 6, 7, 1\) and its mask {label} \(4, 6, 7\) must share a grid, "
               rf"the image with 1 modality as channels \(dataset\.json\)")
    with pytest.raises(ValueError, match=message):
        datasets.load_msd(task, folder)

def test_msd_labels_beyond_dataset_json_are_refused(tmp_path):
    task = "Task09_Spleen"
    folder, names = _unpacked(tmp_path, task, 2)
    import nibabel
    label = folder / task / "labelsTr" / f"{names[1]}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.full((9, 8, 3), 2, np.uint8), np.eye(4)), label)
    with pytest.raises(ValueError, match=rf"{label} must hold class indices below n_classes=2"):
        datasets.load_msd(task, folder)

# --------------------------------------------------------------- synthetic volumes

def test_synthetic_volumes_blobs_round_in_mm():
    images, masks = datasets.synthetic_volumes(6, shape=(16, 48, 48), spacing=(3.0, 1.0, 1.0))
    assert images.shape == masks.shape == (6, 16, 48, 48, 1)
    assert images.dtype == masks.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    assert np.unique(masks).tolist() == [0.0, 1.0]
    shares = masks.mean(axis=(1, 2, 3, 4))
    assert shares.min() > 0 and shares.max() < 0.15  # every volume has a blob, small ones
    assert images[masks == 1].mean() > images[masks == 0].mean() + 0.2  # bright blobs
    extents = []
    for mask in masks[..., 0]:
        labels, n = ndimage.label(mask)
        assert 1 <= n <= 3
        for box in ndimage.find_objects(labels):
            extents.append([s.stop - s.start for s in box])
    voxels = np.array(extents, float)
    millimetres = voxels * [3.0, 1.0, 1.0]
    # round in mm (the depth is a third in voxels): mean extent ratios depth/height, width/height
    assert 0.7 < np.mean(millimetres[:, 0] / millimetres[:, 1]) < 1.4
    assert 0.7 < np.mean(millimetres[:, 2] / millimetres[:, 1]) < 1.4
    assert np.mean(voxels[:, 0] / voxels[:, 1]) < 0.5

def test_synthetic_volumes_deterministic_per_seed():
    a = datasets.synthetic_volumes(3, shape=(8, 24, 24), seed=4)
    b = datasets.synthetic_volumes(2, shape=(8, 24, 24), seed=4)
    c = datasets.synthetic_volumes(2, shape=(8, 24, 24), seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[:2], y)  # the first volumes do not depend on n
    assert not np.array_equal(a[0][:2], c[0])

@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be an integer >= 1; got 0"),
    ({"n": 1, "shape": (16, 16)},
     r"shape and spacing must be 3 values each, one per axis \(D, H, W\); got \(\(16, 16\)"),
    ({"n": 1, "shape": (2, 16, 16)}, "shape's sides must be an integer >= 4; got 2"),
    ({"n": 1, "spacing": (3.0, 0.0, 1.0)},
     "spacing's values must be a finite number > 0; got 0.0"),
])
def test_synthetic_volumes_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.synthetic_volumes(**kwargs)

def test_load_synthetic3d_splits_with_spacing():
    train, test = datasets.LOADERS["synthetic3d"](None, n=3, n_test=2, shape=(8, 16, 16),
                                                   spacing=(2.5, 0.5, 0.5), seed=1)
    images, masks = datasets.synthetic_volumes(5, (8, 16, 16), (2.5, 0.5, 0.5), seed=1)
    np.testing.assert_array_equal(train.images, images[:3])
    np.testing.assert_array_equal(test.masks, masks[3:])
    assert train.names == ["00", "01", "02"] and test.names == ["03", "04"]
    assert train.spacing == [(2.5, 0.5, 0.5)] * 3 and test.spacing == [(2.5, 0.5, 0.5)] * 2
    assert isinstance(train, Split) and train.fov is None
    with pytest.raises(ValueError, match="data_dir must be None for synthetic volumes"):
        datasets.load_synthetic3d("volumes/")


# ------------------------------------ chest X-rays, liver and kidney CT, tumour volumes
def test_lung_cxr_real_data_split_by_patient_classes_and_overlapping_labels(shared_data):
    folder = shared_data / "lung_cxr"
    train, test = datasets.load_lung_cxr(folder)
    owner = datasets.patients(folder)
    assert (len(train.names), len(test.names)) == (35, 7) and len(set(owner.values())) == 35
    assert sorted({owner[n] for n in test.names}, key=int) == ["21", "23", "26", "63", "92",
                                                                "98", "103"]
    assert not {owner[n] for n in train.names} & {owner[n] for n in test.names}
    index = train.names.index("ARDSSevere")
    image, mask = train.images[index], train.masks[index]
    assert image.shape == mask.shape == (631, 790, 1) and image.dtype == np.float32
    assert mask.dtype == np.int32 and sorted(np.unique(mask)) == [0, 1, 2, 3]
    columns = np.nonzero(mask[..., 0] == 1)[1]  # the patient's left lung: the image's right
    assert columns.mean() > 790 / 2 > np.nonzero(mask[..., 0] == 2)[1].mean()
    labels = datasets.load_lung_cxr(folder, multilabel=True)[0].masks[index]
    assert labels.shape == (631, 790, 3) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels[..., 2], mask[..., 0] == 3)  # cardiomediastinum wins
    assert ((labels[..., 0] + labels[..., 2]) == 2).sum() > 0  # the lung behind the heart
    assert ((labels[..., 0] + labels[..., 1]) == 2).sum() == 0  # the lungs never overlap


def test_liver_ct_real_data_uses_the_patient_split_of_splits_csv(shared_data):
    train, test = datasets.load_liver_ct(shared_data / "liver_ct")
    assert train.images.shape == (493, 256, 256, 1) and test.masks.shape == (130, 256, 256, 1)
    assert sorted({name.split("_")[0] for name in test.names})[:3] == ["10005", "10006", "10010"]
    assert set(np.unique(test.masks)) == {0.0, 1.0} and 0.05 < float(train.masks.mean()) < 0.08
    own = datasets.load_liver_ct(shared_data / "liver_ct", test_patients=[10001])[1]
    assert "10001_81" in own.names and {n.split("_")[0] for n in own.names} == {"10001"}


def test_kidney_tumour_ct_leaves_a_patient_out_and_refuses_an_unknown_one(shared_data):
    folder = shared_data / "kidney_tumour_ct"
    train, test = datasets.load_kidney_tumour_ct(folder, test_patients=["10037"])
    assert train.images.shape == (21, 512, 512, 1) and test.names == [
        "10037_29", "10037_35", "10037_47"]
    counts = np.bincount(np.concatenate([train.masks, test.masks]).ravel(), minlength=3)
    assert counts.tolist() == [6028598, 115564, 147294]  # as PROVENANCE.md counts them
    with pytest.raises(ValueError, match=re.escape(
            f"test_patients must be patients of {folder} (10036, 10037, 10038, 10040, 10041); "
            "got ['9']")):
        datasets.load_kidney_tumour_ct(folder, test_patients=[9])


def test_tumour_volumes_real_data_windows_ct_and_zscores_mri(shared_data):
    train, test = datasets.load_tumour_volumes(shared_data / "tumour_volumes")
    assert train.names == ["brain1", "brain2", "breast1", "lung2"] and test.names == ["lung1"]
    assert test.images[0].shape == (48, 512, 512, 1) and test.spacing[0] == (5.0, 0.5703125,
                                                                               0.5703125)
    assert [int(m.sum()) for m in train.masks] == [4137, 453, 143, 24644]
    lung = test.images[0]  # the "lung" window (-1350, 150): air near 0.22, bone 1
    assert lung.dtype == np.float32 and float(lung.min()) == pytest.approx(326 / 1500)
    assert float(lung.max()) == 1.0
    brain = train.images[0]  # a z-score: mean 0 at 0.5
    assert float(brain.mean()) == pytest.approx(0.5, abs=0.02)


def test_tumour_volumes_download_converts_the_sdist_into_the_shared_copy_byte_for_byte(
        shared_data, tmp_path, server, cache, monkeypatch):
    """pyradiomics 3.0.1's sdist layout (its ten NRRD files made from the shared NIfTI copies)
    from 127.0.0.1: unpacked, converted, the sdist removed, every file as SHA256SUMS lists it."""
    shared = shared_data / "tumour_volumes"
    monkeypatch.setenv("KERAS_UNET_REGISTRY", str(serve_pyradiomics_mirror(server, tmp_path,
                                                                            shared)))
    train, test = datasets.load_tumour_volumes()
    assert server.requests == ["pypi/pyradiomics-3.0.1.tar.gz"]
    sums = {name: digest for digest, name in map(str.split, (shared / "SHA256SUMS").open())
            if name != "PROVENANCE.md"}
    folder = cache / "tumour_volumes"
    assert _left_in(folder) == sorted([".complete", ".pyradiomics-3.0.1.tar.gz.extracted", *sums])
    assert {name: sha256((folder / name).read_bytes()) for name in sums} == sums
    assert train.names == ["brain1", "brain2", "breast1", "lung2"] and test.names == ["lung1"]
    datasets.load_tumour_volumes()  # from the cache: no request
    assert len(server.requests) == 1
    assert datasets.REGISTRY["tumour_volumes"][0]["sha256"] == (  # PyPI's, PROVENANCE.md's
        "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5")


def test_the_new_datasets_without_a_folder_say_what_to_pass():
    with pytest.raises(ValueError, match=re.escape(
            "lung_cxr has no download source in this version: pass data_dir=, a copy laid out "
            "as data/README.md says (e.g. $KERAS_UNET_DATA_DIR/lung_cxr)")):
        datasets.load_lung_cxr()


@pytest.mark.parametrize("name, loader, n_classes", [
    ("kidney_tumour_ct", datasets.load_kidney_tumour_ct, 3),
    ("lung_cxr", datasets.load_lung_cxr, 4)])
def test_a_class_mask_beyond_the_classes_is_refused_naming_its_file(shared_data, tmp_path,
                                                                    name, loader, n_classes):
    import shutil
    folder = Path(shutil.copytree(shared_data / name, tmp_path / name))
    bad = sorted((folder / "masks").glob("*.png"))[0]
    mask = np.asarray(Image.open(bad)).copy()
    mask[0, 0] = n_classes
    Image.fromarray(mask).save(bad)
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))} must hold class indices "
                                         rf"below n_classes={n_classes}"):
        loader(folder)
