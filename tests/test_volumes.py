"""keras_unet.images on volumes: NIfTI, NRRD and multi-page TIFF read and written (the
array, its affine and spacing), the folder reader on volume folders, intensity windows and
z-scores. A few tests read the real tumour volumes (tests/conftest.py: ``shared_data``)."""

import re

import nibabel
import nrrd
import numpy as np
import pytest
import tifffile
from PIL import Image

from keras_unet import images

# brain1's geometry (a negative determinant: j runs anterior) and lung1's (L P S)
BRAIN = np.array([[-0.78125, 0, 0, 99.2], [0, 0.78125, 0, -120.5], [0, 0, 6.5, -43.0],
                  [0, 0, 0, 1]])
SPACING = {"brain1": (6.5, 0.78125, 0.78125), "breast1": (2.1, 0.664062, 0.664062),
           "lung1": (5.0, 0.5703125, 0.5703125)}
VOXELS = {"brain1": 4137, "brain2": 453, "breast1": 143, "lung1": 837}


@pytest.fixture(scope="module")
def lung1(shared_data):
    """lung1's image and label as read_volume reads them (read once: 512x512x48)."""
    folder = shared_data / "tumour_volumes"
    return (images.read_volume(folder / "lung1_image.nii.gz"),
            images.read_volume(folder / "lung1_label.nii.gz"))


def test_read_volume_reads_a_real_ct_in_the_package_order(lung1):
    image, label = lung1
    assert image.array.shape == label.array.shape == (48, 512, 512)  # (k, j, i): slices first
    assert (image.array.dtype.name, label.array.dtype.name) == ("int16", "uint8")
    assert image.spacing == label.spacing == SPACING["lung1"]
    assert (int(image.array.min()), int(image.array.max())) == (-1024, 3071)
    assert int(label.array.sum()) == VOXELS["lung1"] and set(np.unique(label.array)) == {0, 1}
    assert np.array_equal(np.diag(image.affine), [-0.5703125, -0.5703125, 5.0, 1.0])
    assert np.array_equal(image.affine, label.affine)
    assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 1
    # axis 0 is the file's k: the tumour's slices are k = 32..34 (PROVENANCE.md)
    assert np.flatnonzero(label.array.any(axis=(1, 2))).tolist() == [32, 33, 34]


def test_real_mask_written_like_its_scan_has_its_affine_shape_and_values(lung1, tmp_path):
    image, label = lung1
    path = images.write_volume(tmp_path / "lung1.nii.gz", label.array, like=image)
    back = images.read_volume(path)
    assert np.array_equal(back.affine, image.affine) and back.spacing == image.spacing
    assert back.array.shape == (48, 512, 512) and back.array.dtype.name == "uint8"
    assert np.array_equal(back.array, label.array)
    on_disk = nibabel.load(path)  # the file's own (i, j, k) order, as a viewer reads it
    assert on_disk.shape == (512, 512, 48)
    assert np.array_equal(np.asanyarray(on_disk.dataobj), np.transpose(label.array, (2, 1, 0)))
    assert int(on_disk.header["qform_code"]) == int(on_disk.header["sform_code"]) == 1
    assert on_disk.header.get_xyzt_units() == image.header.get_xyzt_units()


def test_auto_intensity_takes_a_ct_window_for_ct_and_zscore_for_mr(lung1, shared_data):
    image = lung1[0].array[30:36, 200:264, 100:164]  # a crop: the rule reads the minimum
    assert image.min() <= -500
    auto = images.normalize_intensity(image)
    assert np.array_equal(auto, images.normalize_intensity(image, "abdomen"))
    assert np.array_equal(auto, images.normalize_intensity(image, (-160, 240)))
    mr = images.read_volume(shared_data / "tumour_volumes" / "breast1_image.nii.gz").array
    assert int(mr.min()) == 6
    assert np.array_equal(images.normalize_intensity(mr), images.normalize_intensity(mr, "zscore"))


def test_real_nifti_converted_to_nrrd_keeps_its_world_geometry(shared_data, tmp_path):
    label = images.read_volume(shared_data / "tumour_volumes" / "brain1_label.nii.gz")
    assert label.array.shape == (25, 256, 256) and label.spacing == SPACING["brain1"]
    assert np.linalg.det(label.affine[:3, :3]) < 0  # j runs anterior: qfac -1
    back = images.read_volume(images.write_volume(tmp_path / "brain1.nrrd", label.array, label))
    assert np.array_equal(back.array, label.array) and int(back.array.sum()) == VOXELS["brain1"]
    assert np.allclose(back.affine, label.affine, atol=1e-6) and back.header is None
    _, header = nrrd.read(str(tmp_path / "brain1.nrrd"))  # NRRD's LPS: x and y negated
    assert header["space"] == "left-posterior-superior"
    assert np.allclose(header["space directions"], np.diag([0.78125, -0.78125, 6.5]))
    assert np.allclose(header["space origin"], [-1, -1, 1] * label.affine[:3, 3])


def test_from_folder_on_real_volume_cases(shared_data, tmp_path):
    source = shared_data / "tumour_volumes"
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for case, mask_name in (("brain2", "brain2.nii.gz"), ("breast1", "breast1_mask.nii.gz")):
        (tmp_path / "images" / f"{case}.nii.gz").symlink_to(source / f"{case}_image.nii.gz")
        (tmp_path / "masks" / mask_name).symlink_to(source / f"{case}_label.nii.gz")
    split = images.from_folder(tmp_path / "images", tmp_path / "masks")
    assert split.names == ["brain2", "breast1"] and split.fov is None
    assert [i.shape for i in split.images] == [(23, 256, 256, 1), (21, 120, 45, 1)]
    assert [m.shape for m in split.masks] == [(23, 256, 256, 1), (21, 120, 45, 1)]
    assert [m.dtype.name for m in split.masks] == ["float32"] * 2  # 0/1: binary
    assert [int(m.sum()) for m in split.masks] == [VOXELS["brain2"], VOXELS["breast1"]]
    assert split.spacing[0] == (6.5, 0.78125, 0.78125)
    assert split.spacing[1] == pytest.approx(SPACING["breast1"], abs=1e-6)
    breast = images.read_volume(source / "breast1_image.nii.gz").array
    assert np.array_equal(split.images[1][..., 0], images.normalize_intensity(breast, "zscore"))
    window = images.from_folder(tmp_path / "images", tmp_path / "masks", intensity=(0, 248))
    assert np.array_equal(window.images[1][..., 0], (breast / 248).astype(np.float32))


# ------------------------------------------------------ formats: synthetic volumes


def test_nifti_round_trip_without_like_keeps_spacing_and_dtype(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 10
    for name in ("a.nii.gz", "a.nii"):
        volume = images.read_volume(images.write_volume(tmp_path / name, array,
                                                        spacing=(3.0, 0.5, 0.25)))
        assert np.array_equal(volume.array, array) and volume.array.dtype.name == "int16"
        assert volume.spacing == (3.0, 0.5, 0.25)
        assert np.array_equal(volume.affine, np.diag([0.25, 0.5, 3.0, 1.0]))
    channels = np.random.default_rng(0).random((2, 3, 4, 2))  # (D, H, W, C): C last in the file
    volume = images.read_volume(images.write_volume(tmp_path / "c.nii.gz", channels))
    assert nibabel.load(tmp_path / "c.nii.gz").shape == (4, 3, 2, 2)
    assert np.array_equal(volume.array, channels) and volume.spacing == (1.0, 1.0, 1.0)
    mask = images.read_volume(images.write_volume(tmp_path / "m.nii.gz", array > 0)).array
    assert mask.dtype.name == "uint8" and int(mask.sum()) == 13


def test_nrrd_round_trip_of_a_small_volume(tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    like = images.Volume(np.zeros((4, 5, 6)), BRAIN, (6.5, 0.78125, 0.78125))
    volume = images.read_volume(images.write_volume(tmp_path / "a.nrrd", array, like))
    assert np.array_equal(volume.array, array) and volume.array.dtype.name == "int16"
    assert np.array_equal(volume.affine, BRAIN) and volume.spacing == (6.5, 0.78125, 0.78125)
    data, header = nrrd.read(str(tmp_path / "a.nrrd"))
    assert data.shape == (6, 5, 4) and header["kinds"] == ["domain"] * 3  # the (i, j, k) order
    channels = np.random.default_rng(0).random((4, 5, 6, 3)).astype(np.float32)
    volume = images.read_volume(images.write_volume(tmp_path / "c.nrrd", channels,
                                                    spacing=(2.0, 1.0, 1.0)))
    assert np.array_equal(volume.array, channels) and volume.spacing == (2.0, 1.0, 1.0)


def test_nrrd_in_ras_space_and_without_directions(tmp_path):
    array = np.ones((6, 5, 4), np.uint8)  # (i, j, k) as pynrrd writes them
    nrrd.write(str(tmp_path / "ras.nrrd"), array, {
        "space": "right-anterior-superior", "space directions": np.diag([0.5, 0.5, 2.0]),
        "space origin": np.array([1.0, 2.0, 3.0])})
    volume = images.read_volume(tmp_path / "ras.nrrd")
    assert volume.array.shape == (4, 5, 6) and volume.spacing == (2.0, 0.5, 0.5)
    assert np.array_equal(volume.affine, [[0.5, 0, 0, 1], [0, 0.5, 0, 2], [0, 0, 2, 3],
                                          [0, 0, 0, 1]])
    nrrd.write(str(tmp_path / "plain.nrrd"), array, {"spacings": [0.5, 0.5, 2.0]})
    assert images.read_volume(tmp_path / "plain.nrrd").spacing == (2.0, 0.5, 0.5)


def test_tiff_round_trip_and_imagej_spacing(tmp_path):
    array = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    volume = images.read_volume(images.write_volume(tmp_path / "a.tif", array,
                                                    spacing=(2.0, 0.5, 0.25)))
    assert np.array_equal(volume.array, array) and volume.array.dtype.name == "uint16"
    assert volume.spacing == (2.0, 0.5, 0.25) and volume.header is None
    channels = np.arange(3 * 4 * 5 * 2, dtype=np.int16).reshape(3, 4, 5, 2)
    volume = images.read_volume(images.write_volume(tmp_path / "c.tiff", channels))
    assert np.array_equal(volume.array, channels) and volume.spacing == (1.0, 1.0, 1.0)
    tifffile.imwrite(tmp_path / "fiji.tif", array.astype(np.uint8), imagej=True,
                     resolution=(4.0, 4.0), metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"})
    volume = images.read_volume(tmp_path / "fiji.tif")  # ImageJ's own hyperstack
    assert volume.array.shape == (3, 4, 5) and volume.spacing == (3.0, 0.25, 0.25)
    assert tifffile.TiffFile(tmp_path / "c.tiff").series[0].axes == "ZCYX"  # a channel a page
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((3, 4, 5), np.uint8), imagej=True)
    with pytest.raises(ValueError, match=re.escape(  # ImageJ's 3 channels of one plane
            "rgb.tif: TIFF axes CYX: not a volume (ZYX, and C or S channels); read 2D images "
            "with read_image")):
        images.read_volume(tmp_path / "rgb.tif")


# ------------------------------------------------------------------------- errors


def test_read_volume_errors_name_the_file(tmp_path, monkeypatch):
    path = images.write_volume(tmp_path / "cut.nii.gz", np.random.default_rng(0).integers(
        0, 1000, (16, 16, 16)).astype(np.int16))
    path.write_bytes(path.read_bytes()[:2000])  # a download cut short
    with pytest.raises(ValueError, match=re.escape(f"cannot read the volume {path}: ")):
        images.read_volume(path)
    flat = tmp_path / "slice.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 5), np.int16), np.eye(4)), flat)
    with pytest.raises(ValueError, match=re.escape(
            f"{flat} has shape (4, 5); a volume has 3 axes (4: channels)")):
        images.read_volume(flat)
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "page.tif")
    with pytest.raises(ValueError, match=re.escape(
            f"cannot read the volume {tmp_path / 'page.tif'}: TIFF axes YX: not a volume (ZYX, "
            f"and C or S channels); read 2D images with read_image")):
        images.read_volume(tmp_path / "page.tif")
    with pytest.raises(ValueError, match=re.escape(
            "a volume file's name must be one of .nii.gz .nii .nrrd .tif .tiff; got")):
        images.read_volume(tmp_path / "scan.png")
    with pytest.raises(ValueError, match=re.escape(f"{path} is a volume: read it with "
                                                   f"read_volume")):
        images.read_image(path)
    monkeypatch.setattr(images, "nrrd", None)  # pynrrd not installed
    for call in (lambda: images.read_volume(tmp_path / "a.nrrd"),
                 lambda: images.write_volume(tmp_path / "a.nrrd", np.zeros((2, 2, 2)))):
        with pytest.raises(ValueError, match=re.escape(
                f"{tmp_path / 'a.nrrd'}: NRRD files need pynrrd: pip install pynrrd")):
            call()


def test_write_volume_refuses_another_grid_and_bad_spacing(tmp_path):
    like = images.Volume(np.zeros((4, 5, 6), np.int16), np.eye(4), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=re.escape(
            "array has shape (4, 5, 7); expected a volume (D, H, W) or (D, H, W, C) on the grid "
            "of like, (4, 5, 6)")):
        images.write_volume(tmp_path / "m.nii.gz", np.zeros((4, 5, 7), np.uint8), like)
    with pytest.raises(ValueError, match=re.escape("array has shape (4, 5); expected a volume")):
        images.write_volume(tmp_path / "m.nii.gz", np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=re.escape("spacing must be 3 numbers > 0, mm per array "
                                                   "axis (D, H, W); got [1.0, 1.0]")):
        images.write_volume(tmp_path / "m.nii.gz", np.zeros((4, 5, 6)), spacing=(1, 1))
    with pytest.raises(ValueError, match="spacing must be a finite number > 0; got 0"):
        images.write_volume(tmp_path / "m.nii.gz", np.zeros((4, 5, 6)), spacing=(1, 0, 1))
    assert list(tmp_path.iterdir()) == []


def _volume_folders(root, masks, scans=None, mask_spacing=None):
    """images/ and masks/ of .nii.gz volumes, ``{stem: array}`` each (scans: 100 everywhere)."""
    scans = scans or {stem: np.full(mask.shape, 100, np.int16) for stem, mask in masks.items()}
    for folder, arrays, spacing in (("images", scans, None), ("masks", masks, mask_spacing)):
        for stem, array in arrays.items():
            images.write_volume(root / folder / f"{stem}.nii.gz", array, spacing=spacing)
    return root / "images", root / "masks"


def test_from_folder_refuses_a_mask_off_its_images_grid(tmp_path):
    folders = _volume_folders(tmp_path, {"a": np.zeros((4, 5, 6), np.uint8)},
                              {"a": np.zeros((4, 5, 7), np.int16)})
    image, mask = (f / "a.nii.gz" for f in folders)
    with pytest.raises(ValueError, match=re.escape(
            f"the mask {mask} is not on the grid of its image {image} (shape (4, 5, 6), not "
            f"(4, 5, 7))")):
        images.from_folder(*folders)
    folders = _volume_folders(tmp_path / "2", {"a": np.zeros((4, 5, 6), np.uint8)},
                              mask_spacing=(1, 1, 2))  # 2 mm along i, the image's 1 mm
    image, mask = (f / "a.nii.gz" for f in folders)
    with pytest.raises(ValueError, match=re.escape(
            f"the mask {mask} is not on the grid of its image {image} (its affine differs from "
            f"the image's by 1)")):
        images.from_folder(*folders)


def test_from_folder_refuses_volumes_mixed_with_2d_images(tmp_path):
    images_dir, masks_dir = _volume_folders(tmp_path, {"a": np.zeros((4, 5, 6), np.uint8)})
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(images_dir / "b.png")
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(masks_dir / "b.png")
    with pytest.raises(ValueError, match=re.escape(
            f"the folders mix volumes and 2D images: {images_dir / 'a.nii.gz'} is a volume, "
            f"{images_dir / 'b.png'} a 2D image; keep one kind")):
        images.from_folder(images_dir, masks_dir)


def test_from_folder_reads_class_volumes_and_refuses_a_palette(tmp_path):
    classes = np.zeros((4, 5, 6), np.uint8)
    classes[1, 1:3, 1:4], classes[2, 2, 2] = 1, 2
    folders = _volume_folders(tmp_path, {"a": classes, "b": (classes > 0).astype(np.uint8)})
    split = images.from_folder(*folders, intensity=(0, 200))
    assert split.masks.shape == (2, 4, 5, 6, 1) and split.masks.dtype.name == "int32"
    assert np.array_equal(split.masks[0, ..., 0], classes)
    assert split.images.shape == (2, 4, 5, 6, 1) and np.all(split.images == 0.5)
    assert split.spacing == [(1.0, 1.0, 1.0)] * 2
    with pytest.raises(ValueError, match="palette= reads colour-coded mask images"):
        images.from_folder(*folders, palette={(0, 0, 0): 0})


def test_volume_files_pair_by_their_stem():
    assert images.file_stem("cases/lung1_image.nii.gz") == "lung1_image"
    assert images.file_stem("A.NII.GZ") == "A" and images.file_stem("b.nrrd") == "b"
    assert images.file_stem("c.v2.png") == "c.v2" and images.file_stem("d.gz") == "d"
    assert images.is_volume("x/CT.Nii.Gz") and images.is_volume("a.nrrd")
    assert not images.is_volume("a.tif") and not images.is_volume("a.gz")


def test_pair_files_matches_volumes_by_stem_or_stem_mask(tmp_path):
    for path in ("images/case.nii.gz", "images/other.nrrd", "masks/case_mask.nii.gz",
                 "masks/other.nrrd"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    pairs = images.pair_files(tmp_path / "images", tmp_path / "masks")
    assert [(i.name, m.name) for i, m in pairs] == [("case.nii.gz", "case_mask.nii.gz"),
                                                    ("other.nrrd", "other.nrrd")]
    assert list(images.image_files(tmp_path / "images")) == ["case", "other"]
    (tmp_path / "images" / "case.nii").write_bytes(b"")
    with pytest.raises(ValueError, match="holds images of one stem: case.nii, case.nii.gz"):
        images.image_files(tmp_path / "images")


# --------------------------------------------------------------------- intensities


def test_normalize_intensity_windows_are_exact():
    hu = np.array([[-1200, -160, 40], [240, 1000, -100]], np.int16)
    assert np.array_equal(images.normalize_intensity(hu, "abdomen"),
                          np.float32([[0, 0, 0.5], [1, 1, 0.15]]))
    assert np.array_equal(images.normalize_intensity(hu, (-100, 100)),
                          np.float32([[0, 0, 0.7], [1, 1, 0]]))
    assert images.normalize_intensity(hu, [-1350.0, 150.0])[0].tolist() == pytest.approx(
        [150 / 1500, 1190 / 1500, 1390 / 1500])
    assert images.normalize_intensity(hu, "brain").dtype.name == "float32"
    assert images.WINDOWS["lung"] == (-1350, 150) and images.ZSCORE_CLIP == 5


def test_normalize_intensity_zscore_maps_five_sd_onto_0_1():
    values = np.array([0, 1, 2, 3, 4], np.int16)
    expected = ((values - 2) / np.sqrt(2) + 5) / 10
    assert np.array_equal(images.normalize_intensity(values, "zscore"),
                          expected.astype(np.float32))
    outlier = np.r_[np.zeros(99), 1000.0]  # mean 10, sd 99.5: 1000 is 9.95 sd above
    scaled = images.normalize_intensity(outlier, "zscore")
    assert scaled[-1] == 1.0 and scaled[0] == np.float32((-10 / np.sqrt(9900) + 5) / 10)
    assert images.normalize_intensity(np.full((2, 3), 7.0), "zscore").tolist() == [[0.5] * 3] * 2
    assert images.normalize_intensity(values).tolist() == images.normalize_intensity(
        values, "zscore").tolist()  # "auto": no value at or below -500


def test_normalize_intensity_none_keeps_as_images_rules():
    assert np.array_equal(images.normalize_intensity(np.array([0, 51, 255], np.uint8), "none"),
                          np.float32([0, 51, 255]) / 255)
    assert images.normalize_intensity(np.full((2, 2, 2), 0.25), "none").shape == (2, 2, 2)
    with pytest.raises(ValueError, match=re.escape(
            "ct has int16 voxels in [0, 300]; expected 8-bit, 16-bit or float voxels in [0, 1] "
            "(normalize_intensity maps a scan's values onto [0, 1]: a CT window, 'zscore')")):
        images.normalize_intensity(np.array([0, 300], np.int16), "none", name="ct")


INTENSITIES = ("intensity must be 'auto', 'zscore', 'none', one of WINDOWS ('abdomen', 'liver', "
               "'lung', 'brain', 'bone') or a window (low, high) with low < high; got ")


@pytest.mark.parametrize("intensity, message", [
    ((100, 100), INTENSITIES + "(100, 100)"),
    ((200, -100), INTENSITIES + "(200, -100)"),
    ("kidney", INTENSITIES + "'kidney'"),
    ((0, 1, 2), INTENSITIES + "(0, 1, 2)"),
    (None, INTENSITIES + "None"),
    ((0, "high"), "intensity (low, high) must be a finite number; got 'high'"),
])
def test_normalize_intensity_refuses_bad_windows_and_names(intensity, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        images.normalize_intensity(np.zeros((2, 2)), intensity)


def test_ct_window_takes_the_percentiles_of_labelled_voxels():
    volumes = [np.arange(100).reshape(4, 5, 5), np.full((2, 2, 2), 1000)]
    masks = [np.arange(100).reshape(4, 5, 5) >= 50, np.zeros((2, 2, 2, 1))]
    assert images.ct_window(volumes, masks, (0, 100)) == (50.0, 99.0)
    assert images.ct_window(volumes, masks) == (50.245, 98.755)
    with pytest.raises(ValueError, match=re.escape("masks[1] (2, 2) is not on the grid of "
                                                   "volumes[1] (2, 2, 2)")):
        images.ct_window(volumes, [masks[0], np.zeros((2, 2))])
    with pytest.raises(ValueError, match="the masks label no voxel"):
        images.ct_window(volumes[1:], masks[1:])
    with pytest.raises(ValueError, match=re.escape("percentiles must be (low, high) with low < "
                                                   "high; got (90, 10)")):
        images.ct_window(volumes, masks, (90, 10))


def test_mask_written_like_a_scaled_scan_is_stored_unscaled(tmp_path):
    scan = nibabel.Nifti1Image(np.arange(24, dtype=np.int16).reshape(4, 3, 2), np.diag(
        [2.0, 3.0, 4.0, 1.0]))
    scan.header.set_slope_inter(2.0, -1.0)
    scan.header["cal_min"], scan.header["cal_max"] = -1, 45  # the scan's display range
    nibabel.save(scan, tmp_path / "scan.nii.gz")
    volume = images.read_volume(tmp_path / "scan.nii.gz")
    assert volume.array.dtype.name == "float64" and volume.array[0, 0, :3].tolist() == [-1, 11, 23]
    assert volume.array.shape == (2, 3, 4) and volume.spacing == (4.0, 3.0, 2.0)
    path = images.write_volume(tmp_path / "mask.nii.gz", volume.array > 10, like=volume)
    on_disk = nibabel.load(path)
    assert on_disk.get_data_dtype() == np.uint8 and on_disk.header.get_slope_inter() == (None,
                                                                                          None)
    assert (on_disk.header["cal_min"], on_disk.header["cal_max"]) == (0, 0)  # a viewer's own
    assert np.array_equal(images.read_volume(path).array, volume.array > 10)
