import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from stgan_cli.files import imageio as sio
from stgan_cli.errors import StganError


def png_bytes(arr):
    ok, buf = cv2.imencode(".png", arr)
    return buf.tobytes()


def test_format_from_content_not_extension(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
    path = tmp_path / "really_png.jpg"
    path.write_bytes(png_bytes(rgb[..., ::-1]))
    pic = sio.read_image(path)
    assert pic.format == "PNG" and np.array_equal(pic.pixels, rgb)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = np.random.default_rng(orientation).integers(0, 255, (24, 40, 3), np.uint8)
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"  # lossless, so pixels compare exactly
    im.save(path, exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert np.array_equal(sio.read_image(path).pixels, expected)


def test_sixteen_bit_grey_palette_and_la(tmp_path):
    g16 = (np.arange(200).reshape(10, 20) * 300).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    pic = sio.read_image(tmp_path / "g16.png")
    assert pic.pixels.dtype == np.uint16 and np.array_equal(pic.pixels, g16)
    idx = np.zeros((10, 20), np.uint8)
    idx[:, 10:] = 1
    pal = Image.fromarray(idx, "P")
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.save(tmp_path / "pal.png", transparency=0)
    pic = sio.read_image(tmp_path / "pal.png")
    assert pic.pixels.shape == (10, 20, 4)
    assert tuple(pic.pixels[0, 0]) == (255, 0, 0, 0) and tuple(pic.pixels[0, 15]) == (0, 255, 0, 255)


def test_icc_profile_survives_png_and_jpeg(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "icc.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(src, icc_profile=icc)
    pic = sio.read_image(src)
    assert pic.icc == icc
    for ext in ("png", "jpg"):
        sio.write_image(tmp_path / f"out.{ext}", pic.pixels, pic.icc)
        with Image.open(tmp_path / f"out.{ext}") as im:
            assert im.info.get("icc_profile") == icc
            im.load()


def test_jpeg_output_of_sixteen_bit_is_eight_bit(tmp_path):
    px = np.full((10, 10, 3), 65535, np.uint16)
    sio.write_image(tmp_path / "o.jpg", px)
    back = sio.read_image(tmp_path / "o.jpg").pixels
    assert back.dtype == np.uint8 and back.min() >= 250


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"), ("empty", "empty file"), ("text", "not an image"),
    ("trunc_png", "truncated PNG"), ("trunc_jpg", "truncated JPEG"), ("tiny", "too small"),
    ("folder", "is a folder"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, case, message):
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    path = tmp_path / f"{case}.png"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, I am not a picture\n")
    elif case == "trunc_png":
        data = png_bytes(rgb)
        path.write_bytes(data[: len(data) // 2])
    elif case == "trunc_jpg":
        ok, buf = cv2.imencode(".jpg", rgb)
        path = tmp_path / "t.jpg"
        path.write_bytes(buf.tobytes()[: len(buf) // 2])
    elif case == "tiny":
        path.write_bytes(png_bytes(rgb[:1, :1]))
    elif case == "folder":
        path.mkdir()
    with pytest.raises(StganError, match=message) as err:
        sio.read_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(np.zeros((100, 100, 3), np.uint8)))
    decoded = []
    monkeypatch.setattr(sio.cv2, "imdecode", lambda *a: decoded.append(1))
    with pytest.raises(StganError, match="over the limit"):
        sio.read_image(path, max_pixels=9999)
    assert not decoded


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "фото 写真"
    folder.mkdir()
    rgb = np.zeros((16, 16, 3), np.uint8)
    sio.write_image(folder / "résultat.png", rgb)
    assert sio.read_image(folder / "résultat.png").pixels.shape == (16, 16, 3)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sio.os, "replace", broken_replace)
    with pytest.raises(StganError, match="no space left on the device"):
        sio.write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StganError, match="cannot write there"):
        sio.write_image(blocker / "out.png", np.zeros((8, 8, 3), np.uint8))


def test_masks_from_every_kind_of_file():
    grey = sio.Picture(np.array([[0, 255]], np.uint8), None, "PNG", "m")
    assert sio.mask_from_picture(grey).tolist() == [[0.0, 1.0]]
    rgb = sio.Picture(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8), None, "JPEG", "m")
    assert sio.mask_from_picture(rgb).tolist() == [[1.0, 0.0]]
    rgba = sio.Picture(np.array([[[9, 9, 9, 0], [9, 9, 9, 65535]]], np.uint16), None, "PNG", "m")
    assert sio.mask_from_picture(rgba).tolist() == [[0.0, 1.0]]
