"""Writing image folders as TFRecords: stargan_tf.data.tfrecords and tools/make_tfrecords.py.

One image tree holds good images of every kind the tool converts (CMYK, grayscale, 16-bit, palette
with transparency, RGBA, EXIF-rotated, WebP, upper-case extension, nested folder) and the bad files
it must skip with a reason; the records read back must be exactly the good images."""

import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from cli_helpers import assert_usage_error, run_command
from support import REPO
from stargan_tf.data import tfrecords
from stargan_tf.errors import UserError

TOOL = REPO / "tools" / "make_tfrecords.py"
IMG_SIZE = 32
DOMAINS = ["cat", "dog", "wild"]


# Building the image folders.


def noise(w, h, seed, channels=3):
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path, img, fmt=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kwargs)
    return path


def png_16bit_rgb(w, h):
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one); Pillow opens it as mode "RGB"."""
    raw = b"".join(b"\x00" + struct.pack(">H", 40000) * 3 * w for _ in range(h))

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# Good images: path -> what to check about the record (None = only shape and dtype).
GOOD = {
    "cat/wide.jpg": None,
    "cat/exact.jpg": "kept",
    "cat/cmyk.jpg": None,
    "cat/gray.jpg": "gray",
    "cat/upper.JPG": None,
    "cat/rotated180.jpg": "upright",
    "dog/tall.png": None,
    "dog/exact.png": "kept",
    "dog/deep16.png": "mid_gray",
    "dog/deep16_rgb.png": "converted",
    "dog/rgba.png": "white_left",
    "dog/palette.png": "white_left",
    "wild/photo.webp": None,
    "wild/nested/deeper/inner.jpeg": None,
}
# Bad files: path -> a fragment of the reason.
BAD = {
    "cat/empty.jpg": "empty file",
    "cat/truncated.jpg": "truncated",
    "dog/notes.jpg": "not a JPEG, PNG or WebP image",
    "dog/tiny.png": "too small: 8x8",
    "wild/fake.png": "not a JPEG, PNG or WebP image",
}


def make_tree(root, seed=0):
    """The image folder described by GOOD and BAD, plus files and folders that must be ignored."""
    if not features.check("webp"):
        pytest.fail("Pillow was built without WebP support; the tool must read .webp files.")
    d = root
    save(d / "cat/wide.jpg", Image.fromarray(noise(96, 64, seed)), quality=90)
    save(d / "cat/exact.jpg", Image.fromarray(noise(IMG_SIZE, IMG_SIZE, seed + 1)), quality=90)
    save(d / "cat/cmyk.jpg", Image.fromarray(noise(48, 48, seed + 2, 4), "CMYK"))
    save(d / "cat/gray.jpg", Image.fromarray(noise(40, 56, seed + 3, 1), "L"))
    save(d / "cat/upper.JPG", Image.fromarray(noise(50, 40, seed + 4)), "JPEG")
    # Exactly img_size, but stored upside down: top half black, bottom white, EXIF orientation 3.
    flipped = np.zeros((IMG_SIZE, IMG_SIZE, 3), np.uint8)
    flipped[IMG_SIZE // 2 :] = 255
    exif = Image.Exif()
    exif[0x0112] = 3
    save(d / "cat/rotated180.jpg", Image.fromarray(flipped), exif=exif)
    (d / "cat/empty.jpg").write_bytes(b"")
    whole = io.BytesIO()
    Image.fromarray(noise(64, 64, seed + 5)).save(whole, "JPEG", quality=95)
    (d / "cat/truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])

    save(d / "dog/tall.png", Image.fromarray(noise(40, 80, seed + 6)))
    save(d / "dog/exact.png", Image.fromarray(noise(IMG_SIZE, IMG_SIZE, seed + 7)))
    deep = Image.fromarray(np.full((64, 64), 32896, np.uint16))  # 32896 / 257 = 128
    assert deep.mode == "I;16"
    save(d / "dog/deep16.png", deep)
    (d / "dog/deep16_rgb.png").write_bytes(png_16bit_rgb(IMG_SIZE, IMG_SIZE))
    rgba = noise(64, 48, seed + 8, 4)
    rgba[:, :32, 3] = 0  # left half fully transparent (its colour must not show)
    rgba[:, 32:, 3] = 255
    save(d / "dog/rgba.png", Image.fromarray(rgba, "RGBA"))
    index = np.zeros((48, 48), np.uint8)
    index[:, 24:] = 1
    palette = Image.fromarray(index, "P")
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    save(palette_path := d / "dog/palette.png", palette, transparency=0)
    assert Image.open(palette_path).mode == "P"
    (d / "dog/notes.jpg").write_text("These are not pixels.\n")
    save(d / "dog/tiny.png", Image.fromarray(noise(8, 8, seed + 9)))
    (d / "dog/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (d / "dog/readme.txt").write_text("ignored")

    save(d / "wild/photo.webp", Image.fromarray(noise(70, 50, seed + 10)), "WEBP")
    save(d / "wild/nested/deeper/inner.jpeg", Image.fromarray(noise(60, 60, seed + 11)))
    (d / "wild/fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    save(d / "wild/.hidden/ignored.jpg", Image.fromarray(noise(64, 64, seed + 12)))
    # A hidden folder at the top is no domain; neither is a file.
    save(d / ".ipynb_checkpoints/x.jpg", Image.fromarray(noise(64, 64, seed + 13)))
    (d / "LICENSE.txt").write_text("not a domain")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("images") / "train")


@pytest.fixture(scope="module")
def written(tree, tmp_path_factory):
    """The split written by a library call: (summary, split_dir)."""
    split_dir = tmp_path_factory.mktemp("out") / "train"
    images = tfrecords.find_images(str(tree))
    summary = tfrecords.write_split(
        str(tree), images, str(split_dir), IMG_SIZE, num_shards=3, workers=2, seed=0
    )
    return summary, split_dir


def read_split(split_dir):
    """Records of a split, in shard order: [(filename, label, encoded bytes, decoded uint8
    array)]."""
    import tensorflow as tf

    from stargan_tf.data import format as fmt

    def parse(serialized):
        ex = fmt.parse_example(serialized)
        return (
            ex["filename"],
            ex["label"],
            ex["image"],
            tf.io.decode_image(ex["image"], channels=0, expand_animations=False),
        )

    ds = tf.data.TFRecordDataset(fmt.shard_paths(str(split_dir))).map(parse)  # decoded in tf.data
    return [(f.numpy().decode(), int(y), b.numpy(), x.numpy()) for f, y, b, x in ds]


# The library call.


def test_find_images(tree):
    images = tfrecords.find_images(str(tree))
    assert list(images) == DOMAINS
    assert sorted(p for paths in images.values() for p in paths) == sorted(list(GOOD) + list(BAD))


def test_records_hold_exactly_the_good_images(tree, written):
    summary, split_dir = written
    records = read_split(split_dir)
    assert sorted(f for f, _, _, _ in records) == sorted(GOOD)
    for filename, label, _, x in records:
        assert DOMAINS[label] == filename.split("/")[0], filename
        assert x.shape == (IMG_SIZE, IMG_SIZE, 3) and x.dtype == np.uint8, (filename, x.shape)
    # One domain per shard, as dataset.json says; shuffled within the domain.
    meta = json.loads((split_dir / "dataset.json").read_text())
    assert meta["shard_domains"] == [0, 1, 2]
    labels = [y for _, y, _, _ in records]
    assert labels == sorted(labels)
    shuffled = []
    for d in range(len(DOMAINS)):
        names = [f for f, y, _, _ in records if y == d]
        shuffled.append(names != sorted(names))
    assert any(shuffled)
    assert summary.counts == (6, 6, 2) and summary.num_examples == len(GOOD)


def test_conversions(tree, written):
    records = {f: (data, x) for f, _, data, x in read_split(written[1])}
    for filename, check in GOOD.items():
        data, x = records[filename]
        if check == "kept":  # already 8-bit RGB img_size x img_size: the original bytes
            assert data == (tree / filename).read_bytes(), filename
        else:
            assert data[:3] == b"\xff\xd8\xff", f"{filename} is not re-encoded as JPEG"
        if check == "upright":  # EXIF orientation 3 applied: white on top now
            assert x[: IMG_SIZE // 2 - 2].mean() > 240 and x[IMG_SIZE // 2 + 2 :].mean() < 15
        if check == "white_left":  # transparency composited over white
            assert x[:, : IMG_SIZE // 2 - 3].min() > 240, filename
            assert x[:, IMG_SIZE // 2 + 3 :].mean() < 200, filename
        if check == "mid_gray":  # 16 bits scaled to 8, not clipped to 255
            assert abs(float(x.mean()) - 128) < 3, x.mean()
        if check == "gray":
            assert np.abs(x.astype(int) - x[..., :1]).max() <= 2  # R = G = B
    # A 16-bit RGB PNG opens as mode "RGB" in Pillow, but is not 8-bit: converted.
    assert abs(float(records["dog/deep16_rgb.png"][1].mean()) - 40000 / 257) < 3


def test_skipped_files_and_reasons(written):
    summary, split_dir = written
    assert [p for p, _ in summary.skipped] == sorted(BAD)
    for path, reason in summary.skipped:
        assert BAD[path] in reason, (path, reason)
    lines = (split_dir / "skipped.txt").read_text().splitlines()
    assert [line.split("\t") for line in lines] == [list(item) for item in summary.skipped]
    text = tfrecords.format_summary("train", summary)
    for path, reason in summary.skipped:
        assert f"{path}: {reason}" in text
    assert "  cat   6" in text and "  wild  2" in text


def test_dataset_json(written):
    summary, split_dir = written
    meta = json.loads((split_dir / "dataset.json").read_text())
    assert meta == {
        "format": "stargan_tf.tfrecords",
        "version": 1,
        "img_size": IMG_SIZE,
        "domains": DOMAINS,
        "counts": [6, 6, 2],
        "num_examples": len(GOOD),
        "shards": [f"data-{i:05d}-of-00003.tfrecord" for i in range(3)],
        "shard_bytes": [
            (split_dir / f"data-{i:05d}-of-00003.tfrecord").stat().st_size for i in range(3)
        ],
        "shard_domains": [0, 1, 2],
    }
    # Nothing but the split's files: no temporary shard or json left behind.
    assert sorted(os.listdir(split_dir)) == sorted(meta["shards"] + ["dataset.json", "skipped.txt"])


def test_output_does_not_depend_on_the_worker_count(tree, written, tmp_path):
    images = tfrecords.find_images(str(tree))
    tfrecords.write_split(
        str(tree), images, str(tmp_path / "one"), IMG_SIZE, num_shards=3, workers=1, seed=0
    )
    for name in written[0].shards:
        assert (tmp_path / "one" / name).read_bytes() == (written[1] / name).read_bytes(), name


def test_prepare_image_refuses_truncated_files_whatever_the_global_flag(tree):
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as some other library in the process might set it
    try:
        data, reason = tfrecords.prepare_image(str(tree / "cat/truncated.jpg"), IMG_SIZE)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert data is None and "truncated" in reason


def test_prepare_image_center_crops_and_resizes_once(tmp_path):
    # A wide image: blue | green | red thirds; the center square is all green.
    x = np.zeros((60, 180, 3), np.uint8)
    x[:, :60, 2], x[:, 60:120, 1], x[:, 120:, 0] = 255, 255, 255
    path = save(tmp_path / "wide.png", Image.fromarray(x))
    data, reason = tfrecords.prepare_image(str(path), 20, image_format="png")
    assert reason is None and data.startswith(b"\x89PNG")
    y = np.asarray(Image.open(io.BytesIO(data)))
    assert y.shape == (20, 20, 3)
    np.testing.assert_array_equal(y[..., 1], 255)
    assert y[..., [0, 2]].max() == 0


def test_min_size(tree):
    data, reason = tfrecords.prepare_image(str(tree / "cat/wide.jpg"), IMG_SIZE, min_size=65)
    assert data is None and reason == "too small: 96x64, short side 64 < min_size 65"


def test_a_domain_without_usable_images(tmp_path):
    save(tmp_path / "in/a/good.png", Image.fromarray(noise(40, 40, 0)))
    (tmp_path / "in/b").mkdir()
    (tmp_path / "in/b/notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="Domain b of .* holds no images"):
        tfrecords.check_no_empty_domains(tfrecords.find_images(str(tmp_path / "in")), "in")
    (tmp_path / "in/b/empty.jpg").write_bytes(b"")
    images = tfrecords.find_images(str(tmp_path / "in"))
    with pytest.raises(UserError, match=r"Domain b .* no usable images.*b/empty.jpg: empty file"):
        tfrecords.write_split(str(tmp_path / "in"), images, str(tmp_path / "out"), 16, workers=1)
    assert os.listdir(tmp_path / "out") == []  # no shard, no dataset.json


def test_a_file_name_that_is_not_utf8_is_skipped(tmp_path):
    save(tmp_path / "in/a/good.png", Image.fromarray(noise(40, 40, 0)))
    with open(os.fsencode(tmp_path / "in/a") + b"/caf\xe9.png", "wb") as f:  # Latin-1 "café"
        Image.fromarray(noise(40, 40, 1)).save(f, "PNG")
    images = tfrecords.find_images(str(tmp_path / "in"))
    summary = tfrecords.write_split(
        str(tmp_path / "in"), images, str(tmp_path / "out"), 16, workers=1
    )
    assert summary.counts == (1,)
    assert summary.skipped == (
        ("a/caf\\xe9.png", "file name is not UTF-8 (records store names as UTF-8)"),
    )
    assert "a/caf\\xe9.png\t" in (tmp_path / "out" / "skipped.txt").read_text()


def test_an_existing_split_needs_overwrite(tree, tmp_path):
    images = tfrecords.find_images(str(tree))
    out = tmp_path / "train"
    tfrecords.write_split(str(tree), images, str(out), IMG_SIZE, num_shards=3, workers=2)
    (out / "notes.md").write_text("mine")
    with pytest.raises(UserError, match="already holds files; pass --overwrite"):
        tfrecords.write_split(str(tree), images, str(out), IMG_SIZE, workers=2)
    summary = tfrecords.write_split(
        str(tree), images, str(out), IMG_SIZE, num_shards=2, workers=2, overwrite=True
    )
    # The old 3 shards are gone; files the tool did not write are kept.
    assert sorted(os.listdir(out)) == sorted(
        list(summary.shards) + ["dataset.json", "notes.md", "skipped.txt"]
    )
    assert len(read_split(out)) == len(GOOD)


def test_plan_shards_per_domain():
    assert tfrecords.plan_shards([6, 6, 2], 3) == [0, 1, 2]
    assert tfrecords.plan_shards([6, 6, 2], 1) == [0, 1, 2]  # at least one per domain
    assert tfrecords.plan_shards([5153, 4739, 4738], 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert tfrecords.plan_shards([100, 10], 11) == [0] * 10 + [1]
    assert tfrecords.plan_shards([2, 1], 10) == [0, 0, 1]  # never more shards than images


def test_auto_num_shards():
    assert tfrecords.auto_num_shards(10, 256) == 1
    assert tfrecords.auto_num_shards(14630, 256) == 8  # AFHQ train: as format.py's example
    assert tfrecords.auto_num_shards(14630, 256, "png") == 29
    assert tfrecords.auto_num_shards(3, 16384) == 3  # never more shards than images


def test_val_domains_must_equal_train(tmp_path):
    tfrecords.check_same_domains(["a", "b"], ["a", "b"], "train", "val")
    with pytest.raises(UserError, match="missing in val: b; not in train: c"):
        tfrecords.check_same_domains(["a", "b"], ["a", "c"], "train", "val")


# The command-line tool, in a fresh process.


def run_tool(*args):
    """Runs the tool in a fresh process; returns (exit status, stdout, stderr)."""
    return run_command([sys.executable, TOOL, *args], timeout=300)


def test_cli_train_and_val(tree, tmp_path):
    val = make_tree(tmp_path / "val", seed=100)
    out = tmp_path / "out"
    status, stdout, stderr = run_tool(
        "--train_dir",
        tree,
        "--val_dir",
        val,
        "--output_dir",
        out,
        "--img_size",
        IMG_SIZE,
        "--workers",
        2,
        "--num_shards",
        2,
    )
    assert status == 0, stderr
    for split in ("train", "val"):
        meta = json.loads((out / split / "dataset.json").read_text())
        assert meta["domains"] == DOMAINS and meta["counts"] == [6, 6, 2]
        # --num_shards 2 for 3 domains: one shard per domain at least.
        assert meta["shards"] == [f"data-{i:05d}-of-00003.tfrecord" for i in range(3)]
        assert f"{split}: 14 images in 3 domains" in stdout
        assert f"{split}: 19/19 images" in stderr  # the progress line, at its end
        assert len((out / split / "skipped.txt").read_text().splitlines()) == len(BAD)
    for path, reason in BAD.items():
        assert path in stdout and reason in stdout
    assert sorted(f for f, _, _, _ in read_split(out / "val")) == sorted(GOOD)


def test_cli_empty_domain(tmp_path):
    save(tmp_path / "in/cat/good.png", Image.fromarray(noise(40, 40, 0)))
    (tmp_path / "in/dog").mkdir()
    (tmp_path / "in/dog/broken.jpg").write_text("not an image")
    result = run_tool(
        "--train_dir", tmp_path / "in", "--output_dir", tmp_path / "out", "--img_size", 16
    )
    assert_usage_error(
        result, "Domain dog", "no usable images", "dog/broken.jpg: not a JPEG, PNG or WebP image"
    )
    assert os.listdir(tmp_path / "out" / "train") == []


def test_cli_bad_inputs(tree, tmp_path):
    out = tmp_path / "out"
    assert_usage_error(run_tool("--output_dir", out, "--img_size", 32), "--train_dir")
    assert_usage_error(
        run_tool("--train_dir", tmp_path / "nope", "--output_dir", out, "--img_size", 32),
        "nope does not exist",
    )
    other = tmp_path / "other"
    for domain in ("cat", "dog", "bird"):
        save(other / domain / "a.png", Image.fromarray(noise(40, 40, 0)))
    assert_usage_error(
        run_tool("--train_dir", tree, "--val_dir", other, "--output_dir", out, "--img_size", 32),
        "missing in val: wild; not in train: bird",
    )
    assert_usage_error(
        run_tool(
            "--train_dir", tree, "--output_dir", out, "--img_size", 32, "--num_shards", "many"
        ),
        "--num_shards=many",
    )
    assert_usage_error(
        run_tool("--train_dir", tree, "--output_dir", tree / "records", "--img_size", 32),
        "is inside --train_dir",
    )
    assert not out.exists()
