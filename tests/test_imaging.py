import io

import numpy as np
import pytest
from PIL import Image

from deepiqa_core import (
    ImageDecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
    decode_image,
    imaging,
)

from .conftest import encode, make_image


def _save(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_rgb_round_trip_is_exact_for_png() -> None:
    rgb = make_image(40, 50)
    out = decode_image(encode(rgb))
    assert out.dtype == np.uint8 and out.shape == (40, 50, 3)
    assert np.array_equal(out, rgb)
    assert out.flags.writeable


def test_grayscale_is_replicated_to_three_channels() -> None:
    gray = make_image(40, 40)[:, :, 0]
    out = decode_image(_save(Image.fromarray(gray, "L")))
    assert np.array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))


def test_sixteen_bit_grayscale_is_scaled_by_257() -> None:
    values = np.full((40, 40), 257 * 100, dtype=np.uint16)
    values[0, 0] = 65535
    out = decode_image(_save(Image.fromarray(values)))
    assert out[1, 1].tolist() == [100, 100, 100]
    assert out[0, 0].tolist() == [255, 255, 255]


def test_palette_image_is_expanded() -> None:
    rgb = make_image(40, 40)
    pal = Image.fromarray(rgb).quantize(16)
    out = decode_image(_save(pal))
    assert np.array_equal(out, np.asarray(pal.convert("RGB")))


def test_alpha_is_composited_onto_white() -> None:
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[:20, :, 3] = 255  # top half opaque, bottom half fully transparent
    out = decode_image(_save(Image.fromarray(rgba, "RGBA")))
    assert out[5, 5].tolist() == [200, 0, 0]
    assert out[35, 5].tolist() == [255, 255, 255]


def test_palette_with_transparency_is_composited_too() -> None:
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    out = decode_image(_save(pal, transparency=0))
    assert out[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (48, 48), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(_save(cmyk, "JPEG", quality=95))
    r, g, b = out[24, 24].tolist()
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied() -> None:
    img = Image.fromarray(make_image(40, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_image(_save(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (80, 40, 3)


def test_first_frame_of_an_animation_is_used() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buf.getvalue())[0, 0].tolist() == [255, 0, 0]


def test_float_images_are_refused_with_their_own_code() -> None:
    data = _save(Image.fromarray(np.zeros((40, 40), dtype=np.float32)), "TIFF")
    with pytest.raises(UnsupportedImageError) as err:
        decode_image(data)
    assert err.value.code == "unsupported_image"


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", encode(make_image(64, 64), "JPEG")[:300]]
)
def test_empty_garbage_and_truncated_bytes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode_image(data)
    assert err.value.code == "decode_error"


@pytest.mark.parametrize(("h", "w"), [(31, 100), (100, 31), (8, 8)])
def test_images_smaller_than_a_patch_are_too_small(h: int, w: int) -> None:
    with pytest.raises(ImageTooSmallError) as err:
        decode_image(encode(make_image(h, w)))
    assert err.value.code == "too_small"


def test_pixel_limit_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    big = _save(Image.new("L", (3000, 3000)))  # 9 MP of zeros: a few KB of PNG
    assert len(big) < 100_000

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    with pytest.raises(ImageTooLargeError) as err:
        decode_image(big, max_pixels=1_000_000)
    assert err.value.code == "too_large" and "9000000" in str(err.value)


def test_pillow_bomb_guard_maps_to_too_large() -> None:
    huge = _save(Image.new("1", (20000, 20000)))  # 400 MP, over Pillow's hard limit
    with pytest.raises(ImageTooLargeError):
        decode_image(huge, max_pixels=None)


@pytest.mark.parametrize("workers", [1, 3])
def test_decode_in_order_keeps_order_and_returns_errors_per_item(workers: int) -> None:
    from deepiqa_core.imaging import decode_in_order

    blobs = [encode(make_image(40, 40 + i, seed=i)) for i in range(20)]
    blobs[7] = b"broken"
    results = list(decode_in_order(range(20), lambda i, admit: decode_image(blobs[i]), workers))
    assert [i for i, _ in results] == list(range(20))
    assert isinstance(results[7][1], ImageDecodeError)
    assert all(r.shape == (40, 40 + i, 3) for i, r in results if i != 7)


def test_decode_threads_are_kept_between_calls_and_an_abandoned_call_frees_them() -> None:
    import threading

    from deepiqa_core.imaging import decode_in_order

    used: list[threading.Thread] = []  # held, so no thread object is reused

    def load(i: int, admit) -> int:
        used.append(threading.current_thread())
        return i * 2

    for _ in range(20):
        assert [r for _, r in decode_in_order(range(40), load, 3)] == list(range(0, 80, 2))
    assert len({id(t) for t in used}) <= 3  # the same three threads, call after call
    stopped_early = decode_in_order(range(1000), lambda i, admit: i, 3)
    assert [next(stopped_early)[1] for _ in range(5)] == [0, 1, 2, 3, 4]
    stopped_early.close()  # the caller gives up: its queued loads are dropped
    assert [r for _, r in decode_in_order(range(5), lambda i, admit: -i, 3)] == [0, -1, -2, -3, -4]


def test_image_size_reads_the_header_and_follows_exif_rotation() -> None:
    from deepiqa_core.imaging import image_size

    img = Image.fromarray(make_image(40, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _save(img, "JPEG", exif=exif.tobytes())
    assert image_size(rotated) == decode_image(rotated).shape[:2] == (80, 40)
    assert image_size(_save(img)) == (40, 80)
    with pytest.raises(ImageDecodeError):
        image_size(b"not an image")


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("progressive", [False, True])
def test_fast_jpeg_decoder_gives_pillows_pixels(
    monkeypatch: pytest.MonkeyPatch, mode: str, subsampling: int, progressive: bool
) -> None:
    img = Image.fromarray(make_image(67, 93, seed=3)).convert(mode)
    data = _save(img, "JPEG", quality=80, subsampling=subsampling, progressive=progressive)
    assert imaging._fast_jpeg(Image.open(io.BytesIO(data)), data) is not None  # taken
    fast = decode_image(data)
    monkeypatch.setattr(imaging, "simplejpeg", None)  # Pillow alone
    pillow = decode_image(data)
    assert fast.shape == pillow.shape == (67, 93, 3)
    assert np.array_equal(fast, pillow)


def test_jpeg_cut_inside_its_scan_data_is_a_decode_error_on_either_decoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode(make_image(256, 256, seed=1), "JPEG", quality=95)
    cut = data[: len(data) * 2 // 3]
    assert imaging._fast_jpeg(Image.open(io.BytesIO(cut)), cut) is None  # strict: refused
    with pytest.raises(ImageDecodeError):
        decode_image(cut)
    monkeypatch.setattr(imaging, "simplejpeg", None)
    with pytest.raises(ImageDecodeError):
        decode_image(cut)


def test_rotated_and_cmyk_jpegs_take_pillows_path() -> None:
    img = Image.fromarray(make_image(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _save(img, "JPEG", exif=exif.tobytes())
    cmyk = _save(img.convert("CMYK"), "JPEG")
    for data in (rotated, cmyk):
        assert imaging._fast_jpeg(Image.open(io.BytesIO(data)), data) is None
    assert decode_image(rotated).shape == (60, 40, 3)
