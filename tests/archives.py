"""Test doubles for downloads, shared by tests/test_datasets.py and the notebooks'
conftest: a loopback HTTP server and small archives laid out like the real Oxford-IIIT
Pet ones and the real Medical Segmentation Decathlon ones."""

import gzip
import hashlib
import http.server
import io
import json
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def pet_trimap(height, width):
    """Oxford-pets trimap: 2 background, 1 pet (an ellipse), 3 its outline."""
    yy, xx = np.mgrid[:height, :width]
    r = ((yy - height / 2) / (height / 3)) ** 2 + ((xx - width / 2) / (width / 3)) ** 2
    trimap = np.full((height, width), 2, np.uint8)
    trimap[r < 1.3] = 3
    trimap[r < 1] = 1
    return trimap


def add_to_tar(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _encoded(image, fmt, **kwargs):
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


#: The pets in make_pets_archives: name -> (height, width, PIL mode) of the image.
PETS = {
    "Abyssinian_1": (30, 40, "RGB"),
    "Abyssinian_2": (48, 32, "RGB"),
    "beagle_1": (24, 24, "L"),  # grayscale JPEG, as a few in the real set
    "beagle_2": (20, 28, "CMYK"),  # CMYK JPEG, as a few in the real set
    "Egyptian_Mau_14": (16, 16, "broken"),  # truncated, unreadable
}
PETS_TRAINVAL = ["Abyssinian_1", "beagle_1", "beagle_2"]
PETS_TEST = ["Abyssinian_2", "Egyptian_Mau_14"]


def tutorial_pets(n_trainval=24, n_test=8, seed=0):
    """A bigger set for the Oxford pets notebook: ``(pets, trainval, test)`` in the
    form of ``PETS``, RGB pets of 64 to 112 pixels a side, plus the gray, CMYK and
    truncated ones of ``PETS`` (the last one listed in test.txt)."""
    rng = np.random.default_rng(seed)
    pets = dict(PETS)
    names = [f"Bengal_{i}" for i in range(1, n_trainval + n_test + 1)]
    for name in names:
        pets[name] = (int(rng.integers(64, 113)), int(rng.integers(64, 113)), "RGB")
    return pets, names[:n_trainval] + PETS_TRAINVAL, names[n_trainval:] + PETS_TEST


def make_pets_archives(folder, pets=None, trainval=None, test=None):
    """Write ``images.tar.gz`` and ``annotations.tar.gz`` into ``folder``, laid out
    like the real Oxford-IIIT Pet archives (``images/<name>.jpg``,
    ``annotations/trimaps/<name>.png``, ``annotations/trainval.txt`` and ``test.txt``,
    with the real set's junk: a ``.mat`` file, AppleDouble ``._`` trimaps) holding
    the tiny pets of ``PETS``: RGB, gray and CMYK JPEGs and one truncated file (or
    ``pets`` listed in ``trainval`` and ``test``). Each pet is a warm ellipse on a cool
    noisy background, the pet of its trimap, so a model can learn something.

    Returns:
        ``{filename: sha256}`` of the two archives.
    """
    pets = PETS if pets is None else pets
    lists = (("trainval.txt", trainval or PETS_TRAINVAL), ("test.txt", test or PETS_TEST))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with tarfile.open(folder / "images.tar.gz", "w:gz") as tar:
        for name, (height, width, mode) in pets.items():
            pet = (pet_trimap(height, width) != 2)[..., None]
            colour = np.where(pet, [190, 120, 60], [60, 110, 160])
            pixels = np.clip(colour + rng.normal(0, 40, (height, width, 3)), 0, 255)
            image = Image.fromarray(pixels.astype(np.uint8))
            if mode == "broken":
                data = _encoded(image, "JPEG")[:200]
            else:
                data = _encoded(image.convert(mode), "JPEG", quality=95)
            add_to_tar(tar, f"images/{name}.jpg", data)
        add_to_tar(tar, "images/Abyssinian_100.mat", b"MATLAB 5.0 MAT-file")
    with tarfile.open(folder / "annotations.tar.gz", "w:gz") as tar:
        for name, (height, width, _) in pets.items():
            trimap = Image.fromarray(pet_trimap(height, width))
            add_to_tar(tar, f"annotations/trimaps/{name}.png", _encoded(trimap, "PNG"))
            add_to_tar(tar, f"annotations/trimaps/._{name}.png", b"\x00\x05\x16\x07 AppleDouble")
        for list_name, names in lists:
            lines = "".join(f"{name} 1 1 1\n" for name in names)
            add_to_tar(tar, f"annotations/{list_name}", lines.encode())
    return {
        name: sha256((folder / name).read_bytes())
        for name in ("images.tar.gz", "annotations.tar.gz")
    }


class LoopbackServer:
    """An HTTP server on 127.0.0.1 serving ``files`` ({path: bytes}); paths in
    ``cut`` announce their full length, send half and hang up; ``delay`` slows every
    transfer (seconds per 64 KiB chunk). ``requests`` lists the paths asked for."""

    def __init__(self):
        self.files, self.cut, self.requests, self.delay = {}, set(), [], 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                server.requests.append(path)
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.cut:
                    body = body[: len(body) // 2]
                for start in range(0, len(body), 1 << 16):
                    self.wfile.write(body[start : start + (1 << 16)])
                    time.sleep(server.delay)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        serve = lambda: self.httpd.serve_forever(poll_interval=0.05)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_pets_mirror(server, folder, *pets, prefix="pets/"):
    """Serve Oxford-pets archives in the real layout (``make_pets_archives(folder, *pets)``)
    from ``server`` under ``prefix``, and write ``folder/registry.json``, the
    ``KERAS_UNET_REGISTRY`` file that points the real download code at them. Returns its path."""
    import json

    checksums = make_pets_archives(folder / "served", *pets)
    for name in checksums:
        server.files[f"{prefix}{name}"] = (folder / "served" / name).read_bytes()
    files = [{"url": n, "sha256": s, "filename": n, "kind": "tar"} for n, s in checksums.items()]
    registry = folder / "registry.json"
    registry.write_text(json.dumps({"oxford_pets": {"base_url": server.url + prefix,
                                                    "files": files}}))
    return registry


#: The tiny Decathlon tasks of make_msd_archive: task -> (case prefix, dataset.json's
#: modalities and labels, the NIfTI (i, j, k) shape, voxel sizes (i, j, k) in mm).
MSD = {
    "Task04_Hippocampus": ("hippocampus", ["MRI"], ["background", "Anterior", "Posterior"],
                           (7, 6, 5), (1.0, 1.0, 1.0)),
    "Task01_BrainTumour": ("BRATS", ["FLAIR", "T1w", "t1gd", "T2w"],
                           ["background", "edema", "non-enhancing tumor", "enhancing tumour"],
                           (8, 6, 4), (1.0, 1.0, 1.0)),
    "Task09_Spleen": ("spleen", ["CT"], ["background", "spleen"], (9, 8, 3), (0.75, 0.625, 5.0)),
}


def msd_case(task, index):
    """``(image, label)`` of case ``index`` of the tiny ``task`` as stored in its NIfTI files:
    ``(i, j, k)`` (``(i, j, k, modalities)`` when there are several), the label uint8 class
    indices (a box of each class but the last, which may be absent), the image float32
    (MRI: each modality its own scale and offset) or int16 Hounsfield units (CT: air, body
    and a brighter box)."""
    _, modalities, labels, shape, _ = MSD[task]
    rng = np.random.default_rng(index)
    label = np.zeros(shape, np.uint8)
    for value in range(1, len(labels)):
        if value < len(labels) - 1 or index % 2:
            i, j = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
            label[i:i + 3, j:j + 2, 1:] = value
    if modalities == ["CT"]:
        image = np.full(shape, -1000, np.int16)  # air
        image[1:-1, 1:-1] = rng.integers(-50, 80, (shape[0] - 2, shape[1] - 2, shape[2]))
        image[label > 0] = 300
        return image, label
    channels = [(10.0 * m + 1) * (label + rng.normal(0, 0.3, shape)) + 100 * m
                for m in range(len(modalities))]
    image = np.stack(channels, axis=-1) if len(modalities) > 1 else channels[0]
    return image.astype(np.float32), label


def _nifti(array, spacing):
    """The bytes of a ``.nii.gz`` of ``array`` with voxel sizes ``spacing`` (i, j, k)."""
    import nibabel

    return gzip.compress(nibabel.Nifti1Image(array, np.diag([*spacing, 1.0])).to_bytes(), mtime=0)


def make_msd_archive(folder, task="Task04_Hippocampus", n_cases=6):
    """Write ``folder/<task>.tar`` laid out like the real Decathlon archives:
    ``<task>/dataset.json`` (name, modality, labels, numTraining, training, test),
    ``<task>/imagesTr/<case>.nii.gz`` and ``labelsTr/<case>.nii.gz`` for ``n_cases`` cases
    of :func:`msd_case`, ``imagesTs/`` (one unlabelled image) and the real set's junk:
    macOS AppleDouble ``._`` files beside the images, labels and dataset.json.

    Returns:
        ``(path, md5, names)``: the archive, its MD5, the case names in dataset.json's order.
    """
    prefix, modalities, labels, shape, spacing = MSD[task]
    names = [f"{prefix}_{index:03d}" for index in range(n_cases)]
    info = {"name": task.split("_")[1], "tensorImageSize": "4D" if len(modalities) > 1 else "3D",
            "modality": {str(m): name for m, name in enumerate(modalities)},
            "labels": {str(value): name for value, name in enumerate(labels)},
            "numTraining": n_cases, "numTest": 1,
            "training": [{"image": f"./imagesTr/{name}.nii.gz",
                          "label": f"./labelsTr/{name}.nii.gz"} for name in names],
            "test": [f"./imagesTs/{prefix}_999.nii.gz"]}
    apple = b"\x00\x05\x16\x07 AppleDouble"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.tar"
    with tarfile.open(path, "w") as tar:  # the real ones are plain tar files
        add_to_tar(tar, f"{task}/dataset.json", json.dumps(info, indent=4).encode())
        add_to_tar(tar, f"{task}/._dataset.json", apple)
        for index, name in enumerate(names):
            image, label = msd_case(task, index)
            add_to_tar(tar, f"{task}/imagesTr/{name}.nii.gz", _nifti(image, spacing))
            add_to_tar(tar, f"{task}/labelsTr/{name}.nii.gz", _nifti(label, spacing))
            add_to_tar(tar, f"{task}/imagesTr/._{name}.nii.gz", apple)
            add_to_tar(tar, f"{task}/labelsTr/._{name}.nii.gz", apple)
        add_to_tar(tar, f"{task}/imagesTs/{prefix}_999.nii.gz", _nifti(image, spacing))
    return path, md5(path.read_bytes()), names


def serve_msd_mirror(server, folder, task="Task04_Hippocampus", n_cases=6, prefix="msd/"):
    """Serve a tiny Decathlon ``task`` archive (:func:`make_msd_archive`) from ``server`` under
    ``prefix`` and write ``folder/registry.json``, the ``KERAS_UNET_REGISTRY`` file (its MD5,
    as the real registry gives) that points the real download code at it. Returns
    ``(registry path, case names)``."""
    path, checksum, names = make_msd_archive(folder / "served", task, n_cases)
    server.files[f"{prefix}{path.name}"] = path.read_bytes()
    files = [{"url": path.name, "md5": checksum, "filename": path.name, "kind": "tar"}]
    registry = folder / "registry.json"
    registry.write_text(json.dumps({task: {"base_url": server.url + prefix, "files": files}}))
    return registry, names


def serve_pyradiomics_mirror(server, folder, volumes, prefix="pypi/"):
    """Serve pyradiomics 3.0.1's sdist as PyPI has it, ``pyradiomics-3.0.1.tar.gz`` holding
    ``pyradiomics-3.0.1/data/<case>_{image,label}.nrrd``, made from the NIfTI copies in
    ``volumes`` (the ``tumour_volumes`` folder; same arrays, same geometry), beside a few of the
    sdist's other files; and write ``folder/registry.json``, the ``KERAS_UNET_REGISTRY`` file
    that points the real download code at it. Returns its path."""
    from keras_unet.images import read_volume, write_volume

    folder = Path(folder)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in ("setup.py", "data/README.md", "radiomics/__init__.py"):
            add_to_tar(tar, f"pyradiomics-3.0.1/{name}", b"# pyradiomics\n")
        for nifti in sorted(Path(volumes).glob("*.nii.gz")):
            nrrd = folder / nifti.name.replace(".nii.gz", ".nrrd")
            volume = read_volume(nifti)
            write_volume(nrrd, volume.array, like=volume)
            add_to_tar(tar, f"pyradiomics-3.0.1/data/{nrrd.name}", nrrd.read_bytes())
    server.files[f"{prefix}pyradiomics-3.0.1.tar.gz"] = body = archive.getvalue()
    files = [{"url": "pyradiomics-3.0.1.tar.gz", "sha256": sha256(body), "kind": "tar",
              "filename": "pyradiomics-3.0.1.tar.gz"}]
    registry = folder / "registry.json"
    registry.write_text(json.dumps({"tumour_volumes": {"base_url": server.url + prefix,
                                                       "files": files}}))
    return registry
