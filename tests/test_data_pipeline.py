"""Tests of the tf.data pipelines, the augmentation, the image-folder reader and the TFDS source.

Datasets are tiny (32 px solid-colour PNGs whose colour encodes domain and index, see
`data_helpers.coded_images`), so a reference's domain and identity can be read off its pixels.
"""

import collections
import json
import os
import sys

import data_helpers as dh
import numpy as np
import pytest
import tensorflow as tf

from stargan_tf.data import augment, folders, pipeline, tfds_source
from stargan_tf.errors import UserError

S = 32  # Image side in these tests.
LATENT = 16


@pytest.fixture(scope="module")
def unbalanced_split(tmp_path_factory):
    """Two domains, 10:1: d0 has 40 images, d1 has 4."""
    split = str(tmp_path_factory.mktemp("data") / "train")
    dh.write_split(split, dh.coded_images([40, 4], S))
    return split


def take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


# Training batches.


def test_batch_keys_shapes_and_ranges(unbalanced_split):
    (b,) = take(pipeline.train_dataset(unbalanced_split, S, 6, LATENT, seed=0), 1)
    assert sorted(b) == sorted(["x_real", "y_org", "x_ref", "x_ref2", "y_trg", "z_trg", "z_trg2"])
    for k in ("x_real", "x_ref", "x_ref2"):
        assert b[k].shape == (6, S, S, 3) and b[k].dtype == np.float32
        assert -1.0 <= b[k].min() and b[k].max() <= 1.0
    for k in ("y_org", "y_trg"):
        assert b[k].shape == (6,) and b[k].dtype == np.int32
    for k in ("z_trg", "z_trg2"):
        assert b[k].shape == (6, LATENT) and b[k].dtype == np.float32


def test_uint8_batches_normalise_to_the_float_ones(unbalanced_split):
    # normalize=False (what training uses: the step normalises on the device) changes the dtype
    # only: the same examples, the same augmentation.
    floats = take(pipeline.train_dataset(unbalanced_split, S, 6, LATENT, seed=5), 2)
    uint8s = take(
        pipeline.train_dataset(unbalanced_split, S, 6, LATENT, seed=5, normalize=False), 2
    )
    for f, u in zip(floats, uint8s):
        for k in f:
            if k.startswith("x_"):
                assert u[k].dtype == np.uint8
                np.testing.assert_array_equal(augment.normalize(u[k]).numpy(), f[k])
            else:
                np.testing.assert_array_equal(u[k], f[k])


def test_balanced_sources_references_of_target_domain(unbalanced_split):
    batches = take(pipeline.train_dataset(unbalanced_split, S, 50, LATENT, seed=1), 40)
    y_org = np.concatenate([b["y_org"] for b in batches])
    y_trg = np.concatenate([b["y_trg"] for b in batches])
    assert y_org.size == 2000
    # Sources balanced over domains despite the 10:1 counts.
    assert 0.45 <= np.mean(y_org == 0) <= 0.55
    # Targets uniform and independent of the source domain (equal about 1/num_domains of the time).
    assert 0.45 <= np.mean(y_trg == 0) <= 0.55
    assert 0.45 <= np.mean(y_trg == y_org) <= 0.55
    for d in (0, 1):
        assert 0.42 <= np.mean(y_trg[y_org == d] == 0) <= 0.58
    used = collections.defaultdict(set)
    for b in batches:
        for j in range(50):
            real, ref, ref2 = (dh.decode_code(b[k][j]) for k in ("x_real", "x_ref", "x_ref2"))
            assert real[0] == b["y_org"][j]  # x_real is an image of y_org,
            assert ref[0] == ref2[0] == b["y_trg"][j]  # both references are of y_trg,
            assert ref != ref2  # and they are different images.
            for code in (real, ref, ref2):
                used[code[0]].add(code[1])
    assert len(used[0]) == 40 and len(used[1]) == 4  # Every image gets used.


def test_z_codes_standard_normal_and_distinct(unbalanced_split):
    (b,) = take(pipeline.train_dataset(unbalanced_split, S, 64, LATENT, seed=2), 1)
    z = np.concatenate([b["z_trg"], b["z_trg2"]])
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1.0) < 0.1
    assert not np.allclose(b["z_trg"], b["z_trg2"])
    assert len({tuple(row) for row in b["z_trg"]}) == 64


def test_single_image_domain_repeats_reference(tmp_path):
    split = str(tmp_path / "train")
    dh.write_split(split, dh.coded_images([3, 1], S), num_shards=1)
    (b,) = take(pipeline.train_dataset(split, S, 32, LATENT, seed=0), 1)
    for j in range(32):
        ref, ref2 = dh.decode_code(b["x_ref"][j]), dh.decode_code(b["x_ref2"][j])
        assert ref[0] == ref2[0] == b["y_trg"][j]
        assert (ref == ref2) == (b["y_trg"][j] == 1)  # Only the 1-image domain repeats.


def test_same_seed_same_batches_other_seed_other(unbalanced_split):
    def first(seed):
        return take(pipeline.train_dataset(unbalanced_split, S, 8, LATENT, seed=seed), 3)

    a, b, c = first(5), first(5), first(6)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert not np.array_equal(a[0]["z_trg"], c[0]["z_trg"])
    assert not all(np.array_equal(x["x_real"], y["x_real"]) for x, y in zip(a, c))


def test_iterator_checkpoint_restores_position(unbalanced_split, tmp_path):
    ds = pipeline.train_dataset(unbalanced_split, S, 8, LATENT, seed=7)
    it = iter(ds)
    for _ in range(3):
        next(it)
    ckpt = tf.train.Checkpoint(iterator=it)
    path = ckpt.save(str(tmp_path / "it"))
    after = [{k: v.numpy() for k, v in next(it).items()} for _ in range(2)]
    ckpt.restore(path)
    again = [{k: v.numpy() for k, v in next(it).items()} for _ in range(2)]
    for x, y in zip(after, again):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    # Restoring into a fresh iterator of a freshly built dataset continues the same way.
    it2 = iter(pipeline.train_dataset(unbalanced_split, S, 8, LATENT, seed=7))
    tf.train.Checkpoint(iterator=it2).restore(path)
    np.testing.assert_array_equal(next(it2)["x_real"].numpy(), after[0]["x_real"])


_TWO_REPLICAS = r"""
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from stargan_tf.data import pipeline

split, GLOBAL = sys.argv[1], 8
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
contexts = []

def dataset_fn(ctx):
    contexts.append((ctx.num_input_pipelines, ctx.input_pipeline_id,
                     ctx.get_per_replica_batch_size(GLOBAL)))
    return pipeline.train_dataset(split, 32, ctx.get_per_replica_batch_size(GLOBAL), 16, seed=3,
                                  input_context=ctx)

batch = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
per = {k: [t.numpy() for t in strategy.experimental_local_results(v)] for k, v in batch.items()}
single = [{k: v.numpy() for k, v in b.items()}
          for b in pipeline.train_dataset(split, 32, GLOBAL // 2, 16, seed=3).take(2)]
print("RESULT " + json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "contexts": contexts,
    "devices": [t.device for t in strategy.experimental_local_results(batch["z_trg"])],
    "shapes": {k: [list(a.shape) for a in v] for k, v in per.items()},
    "copies": {k: bool(np.array_equal(v[0], v[1])) for k, v in per.items()
               if k.startswith(("x_", "z_"))},
    "z_shared_rows": int(sum(any(np.allclose(r, q) for q in per["z_trg"][1])
                             for r in per["z_trg"][0])),
    "equals_single_pipeline": all(np.array_equal(per[k][r], single[r][k])
                                  for k in per for r in (0, 1)),
}))
"""


def test_two_replicas_get_different_batches(unbalanced_split):
    from cli_helpers import run_command, subprocess_env

    status, stdout, stderr = run_command(
        [sys.executable, "-c", _TWO_REPLICAS, unbalanced_split],
        env=subprocess_env(TF_CPP_MIN_LOG_LEVEL="2"),
        what="the 2-replica input pipeline",
    )
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert status == 0 and lines, stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["replicas"] == 2
    assert r["contexts"] == [[1, 0, 4]]  # One input pipeline feeds both local replicas.
    assert r["devices"][0].endswith("CPU:0") and r["devices"][1].endswith("CPU:1")
    assert r["shapes"]["x_real"] == [[4, 32, 32, 3], [4, 32, 32, 3]]
    assert not any(r["copies"].values()), r["copies"]
    assert r["z_shared_rows"] == 0
    # Replica r gets batch r of the same pipeline built without a strategy.
    assert r["equals_single_pipeline"]


def test_input_pipelines_get_different_seeds(unbalanced_split):
    def first(pipeline_id):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id)
        return take(
            pipeline.train_dataset(unbalanced_split, S, 8, LATENT, 0, input_context=ctx), 1
        )[0]

    a, b = first(0), first(1)
    assert not np.array_equal(a["z_trg"], b["z_trg"])
    assert not np.array_equal(a["y_trg"], b["y_trg"]) or not np.array_equal(a["x_ref"], b["x_ref"])


# Augmentation: each function eagerly and inside tf.data, same result for the same seed.


def _test_image(height=40, width=48):
    """A uint8 image with a horizontal and a vertical gradient: crops and flips are visible."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], -1).astype(
        np.uint8
    )


def test_domain_streams_read_only_their_shards(tmp_path):
    # A split written by the TFRecord writer holds one domain per shard (dataset.json's
    # shard_domains): a domain's stream opens its shards only. Shown by removing the other
    # domains' shards: reading domain 1 still works and yields all of its records.
    from stargan_tf.data import format as data_format
    from stargan_tf.data import tfrecords

    tree = tmp_path / "tree"
    coded = dh.coded_images([5, 3, 4], S)
    dh.write_image_folder(str(tree), {name: coded[f"d{d}"] for d, name in enumerate("abc")})
    images = tfrecords.find_images(str(tree))
    split = tmp_path / "split"
    tfrecords.write_split(str(tree), images, str(split), S, num_shards=6, workers=1)
    meta = data_format.read_metadata(str(split))
    assert meta["shard_domains"] == [0, 0, 0, 1, 2, 2]
    source = pipeline.open_source(str(split))
    for name, d in zip(meta["shards"], meta["shard_domains"]):
        if d != 1:
            os.remove(split / name)
    names = sorted(r["filename"].numpy().decode() for r in source.read(3, 1))
    assert names == ["b/0000.png", "b/0001.png", "b/0002.png"]


def test_device_augmentation_gives_the_host_batches(unbalanced_split):
    # augment_on="device": the pipeline only decodes and adds the crop/flip choices; the step
    # applies them (augment.finish_batch). The batches must be those of augment_on="host".
    host = take(pipeline.train_dataset(unbalanced_split, S, 8, LATENT, seed=3), 3)
    device_ds = pipeline.train_dataset(
        unbalanced_split, S, 8, LATENT, seed=3, normalize=False, augment_on="device"
    )
    raw = take(device_ds, 3)
    assert raw[0][augment.CROPS_KEY].shape == (8, 3, 5) and raw[0]["x_ref"].dtype == np.uint8
    finish = tf.function(augment.finish_batch)
    for h, r in zip(host, raw):
        d = {k: v.numpy() for k, v in finish(r).items()}
        assert sorted(d) == sorted(h)
        for k in h:
            np.testing.assert_array_equal(d[k], h[k], err_msg=k)
    crops = np.concatenate([r[augment.CROPS_KEY] for r in raw]).reshape(-1, 5)
    assert (crops[:, 2:4] < S).any() and crops[:, 4].any()  # Some crops and flips were drawn.
    # With normalize, the pipeline finishes the batches itself.
    in_pipeline = take(
        pipeline.train_dataset(unbalanced_split, S, 8, LATENT, seed=3, augment_on="device"), 3
    )
    for h, p in zip(host, in_pipeline):
        assert sorted(p) == sorted(h)
        for k in h:
            np.testing.assert_array_equal(p[k], h[k], err_msg=k)


@pytest.mark.parametrize("size,prob", [(32, 1.0), (64, 0.5), (257, 1.0)])
def test_crop_resize_flip_equals_augment(size, prob):
    # The batched device version of the crop, resize and flip against augment(), image by
    # image, on noise (every rounding shows). One level on a rare pixel is float rounding.
    rng = np.random.default_rng(size)
    images = rng.integers(0, 256, (24, size, size, 3), dtype=np.uint8)
    seeds = [tf.constant([i, size], tf.int64) for i in range(24)]
    want = np.stack([augment.augment(images[i], size, seeds[i], prob).numpy() for i in range(24)])
    params = tf.stack([augment.augment_params(s, size, size, prob) for s in seeds])
    got = augment.crop_resize_flip(images, params, size).numpy()
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4, (diff.max(), (diff > 0).mean())
    p = params.numpy()
    assert (p[:, 2:4] < size).any() and p[:, 4].any() and not p[:, 4].all()
    with pytest.raises(ValueError, match="augment_on"):
        pipeline.train_dataset("unused", S, 4, LATENT, seed=0, augment_on="gpu")
    # "auto": the device when there is an accelerator; this machine's tests run on a CPU.
    expected = "device" if tf.config.list_physical_devices("GPU") else "host"
    assert pipeline.resolve_augment_on("auto") == expected
    assert pipeline.resolve_augment_on("device") == "device"


_AUGMENT_FUNCTIONS = {
    "crop_window": lambda im, s: augment.crop_window(s, tf.shape(im)[0], tf.shape(im)[1]),
    "random_resized_crop": lambda im, s: augment.random_resized_crop(im, S, s),
    "resize_up": lambda im, s: augment.resize(im, 64),
    "resize_down": lambda im, s: augment.resize(im, S),
    "random_flip_left_right": lambda im, s: augment.random_flip_left_right(im, s),
    "normalize": lambda im, s: augment.normalize(im),
    "augment": lambda im, s: augment.augment(im, S, s, 0.5),
    "augment_params": lambda im, s: augment.augment_params(s, S, S, 0.5),
    "crop_resize_flip": lambda im, s: augment.crop_resize_flip(
        tf.image.resize(im, [S, S], "nearest")[None], augment.augment_params(s, S, S, 1.0)[None], S
    )[0],
}


@pytest.mark.parametrize("name", sorted(_AUGMENT_FUNCTIONS))
def test_augmentation_eager_equals_tf_data(name):
    fn = _AUGMENT_FUNCTIONS[name]
    image = tf.constant(_test_image())
    seeds = [tf.constant([i, 17], tf.int64) for i in range(8)]
    eager = [fn(image, s).numpy() for s in seeds]
    ds = tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(lambda s: fn(image, s))
    for e, d in zip(eager, ds):
        np.testing.assert_array_equal(e, d.numpy())
    if name in (
        "random_resized_crop",
        "random_flip_left_right",
        "augment",
        "crop_window",
        "augment_params",
        "crop_resize_flip",
    ):
        assert any(not np.array_equal(eager[0], e) for e in eager[1:])  # The seed matters.


def _stats(fn, n=400):
    """Runs fn(seed) for n seeds inside tf.data; returns the outputs as numpy arrays."""
    ds = tf.data.Dataset.range(n).map(lambda i: fn(tf.stack([i, 99])))
    return [x.numpy() for x in ds]


def test_flip_half_the_time():
    image = tf.constant(_test_image(S, S))
    out = _stats(lambda s: augment.random_flip_left_right(image, s))
    flipped = [np.array_equal(o, image.numpy()[:, ::-1]) for o in out]
    assert all(f or np.array_equal(o, image.numpy()) for f, o in zip(flipped, out))
    assert 0.42 <= np.mean(flipped) <= 0.58


def test_crop_windows_follow_torchvision_bounds():
    windows = np.array(_stats(lambda s: augment.crop_window(s, 100, 120), 1000))
    top, left, h, w = windows.T
    area = h * w / (100 * 120)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 100).all()
    assert (left + w <= 120).all()
    # Areas up to 100 * 100 * 1.1 fit a 100 x 120 image (torchvision rejects the rest).
    assert area.min() >= 0.79 and 0.9 < area.max() <= 11 / 12
    assert (w / h).min() >= 0.89 and (w / h).max() <= 1.11
    assert len(set(map(tuple, windows))) > 500  # Positions and sizes vary.
    square = np.array(_stats(lambda s: augment.crop_window(s, 100, 100), 400))
    area = square[:, 2] * square[:, 3] / 1e4
    assert area.min() >= 0.79 and 0.97 < area.max() <= 1.0
    # No window fits a 10 x 100 strip: torchvision's fallback, the central crop of ratio 1.1.
    fallback = augment.crop_window(tf.constant([1, 2]), 10, 100)
    assert [int(v) for v in fallback] == [0, 44, 10, 11]


@pytest.mark.parametrize("prob", [0.0, 0.5, 1.0])
def test_augment_crops_with_probability(prob):
    """A crop shows as a changed image once flips are undone (at S px, few windows are whole)."""
    image = _test_image(S, S)
    full = np.array(_stats(lambda s: augment.crop_window(s, S, S), 400))[:, 2:] == S
    whole_window = np.mean(full.all(axis=1))  # Windows that keep the whole image.
    out = _stats(lambda s: augment.augment(tf.constant(image), S, s, prob), 400)
    for o in out:
        assert o.shape == (S, S, 3) and o.dtype == np.uint8
    cropped = [not (np.array_equal(o, image) or np.array_equal(o, image[:, ::-1])) for o in out]
    expected = prob * (1 - whole_window)
    assert abs(np.mean(cropped) - expected) < 0.07, (np.mean(cropped), expected)
    if prob == 0.0:  # Uncropped images are flipped half the time.
        assert 0.42 <= np.mean([np.array_equal(o, image[:, ::-1]) for o in out]) <= 0.58


def test_augment_output_range_and_shape_after_normalize():
    image = tf.constant(_test_image(50, 40))
    for s in range(20):
        x = augment.normalize(augment.augment(image, S, tf.constant([s, 0]), 0.5)).numpy()
        assert x.shape == (S, S, 3) and x.dtype == np.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_allclose(
        augment.normalize(tf.constant([0, 1, 127, 128, 255], tf.uint8)).numpy(),
        np.array([0, 1, 127, 128, 255]) / 127.5 - 1.0,
        atol=1e-6,
    )


def test_resize_matches_pil():
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    for size in (40, 20):  # Enlarging (bilinear) and shrinking (antialiased, as PIL does).
        ours = augment.resize(tf.constant(image), size).numpy().astype(int)
        pil = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)).astype(int)
        assert np.abs(ours - pil).max() <= 2 and np.abs(ours - pil).mean() < 0.5
    same = tf.constant(image[:26])
    assert augment.resize(same, 26) is same or np.array_equal(augment.resize(same, 26), same)


# Evaluation and image folders.


def test_eval_dataset_order_and_coverage(tmp_path):
    split = str(tmp_path / "val")
    stored = dh.write_split(split, dh.coded_images([5, 3, 2], S), num_shards=3)
    batches = list(pipeline.eval_dataset(split, S, 4))
    assert [int(x.shape[0]) for x, _, _ in batches] == [4, 4, 2]
    names = [n.decode() for _, _, f in batches for n in f.numpy()]
    labels = [int(v) for _, y, _ in batches for v in y.numpy()]
    assert list(zip(names, labels)) == stored  # Every image once, in stored order.
    for x, y, f in batches:
        for xi, yi, fi in zip(x.numpy(), y.numpy(), f.numpy()):
            domain, index = dh.decode_code(xi)
            assert (f"d{domain}/{index:04d}.png", domain) == (fi.decode(), yi)
    # Another img_size: resized.
    x, _, _ = next(iter(pipeline.eval_dataset(split, 16, 4)))
    assert x.shape == (4, 16, 16, 3)


def test_image_folder_reader(tmp_path):
    root = tmp_path / "folder"
    images = dh.coded_images([3, 2], 24)  # Not S: resized.
    dh.write_image_folder(str(root), {"b_dom": images["d1"], "a_dom": images["d0"]})
    # Nested folders, other extensions (any case); other files are skipped.
    os.makedirs(root / "a_dom" / "sub")
    (root / "a_dom" / "sub" / "x.JPG").write_bytes(dh.encode(dh.solid(24, 40, 200), "jpeg"))
    (root / "b_dom" / "y.webp").write_bytes(dh.encode(dh.solid(24, 140, 210), "webp"))
    (root / "b_dom" / "notes.txt").write_text("not an image")
    domains, items = folders.list_domain_images(str(root))
    assert domains == ["a_dom", "b_dom"]
    rel = [(os.path.relpath(p, root), y) for p, y in items]
    assert rel == [
        ("a_dom/0000.png", 0),
        ("a_dom/0001.png", 0),
        ("a_dom/0002.png", 0),
        ("a_dom/sub/x.JPG", 0),
        ("b_dom/0000.png", 1),
        ("b_dom/0001.png", 1),
        ("b_dom/y.webp", 1),
    ]
    batches = list(folders.image_folder_dataset(str(root), S, 5))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    names = [n.decode() for b in batches for n in b[2].numpy()]
    assert x.shape == (7, S, S, 3) and list(y) == [0, 0, 0, 0, 1, 1, 1]
    assert names == [r for r, _ in rel]
    assert dh.decode_code(x[6]) == (1, 70)  # The webp image, decoded and resized.
    with pytest.raises(UserError):
        folders.list_domain_images(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "empty" / "dom")
    with pytest.raises(UserError, match="no images"):
        folders.list_domain_images(str(tmp_path / "empty"))


def test_image_folder_source_trains(tmp_path):
    root = str(tmp_path / "folder")
    dh.write_image_folder(root, dh.coded_images([6, 2], S))
    source = folders.image_folder_source(root)
    batches = take(pipeline.train_dataset(source, S, 16, LATENT, seed=0), 4)
    for b in batches:
        for j in range(16):
            assert dh.decode_code(b["x_real"][j])[0] == b["y_org"][j]
            ref, ref2 = dh.decode_code(b["x_ref"][j]), dh.decode_code(b["x_ref2"][j])
            assert ref[0] == ref2[0] == b["y_trg"][j] and ref != ref2


def test_bad_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        pipeline.train_dataset(str(tmp_path / "nowhere"), S, 4, LATENT, seed=0)
    split = str(tmp_path / "train")
    dh.write_split(split, dh.coded_images([2, 2], S), num_shards=1)
    meta_path = os.path.join(split, "dataset.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["counts"] = [4, 0]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(UserError, match="d1"):
        pipeline.train_dataset(split, S, 4, LATENT, seed=0)


# TFDS.


def test_tfds_spec_parsing():
    assert tfds_source.parse_spec("tfds:afhq") == ("afhq", "train", None)
    assert tfds_source.parse_spec("tfds:mnist:test[:10%]") == ("mnist", "test[:10%]", None)
    assert tfds_source.parse_spec("tfds:a/b:1.2.0:test") == ("a/b:1.2.0", "test", None)
    assert tfds_source.parse_spec("tfds:imagefolder:/x/y:val") == ("imagefolder", "val", "/x/y")


def test_tfds_image_folder_source(tmp_path):
    root = tmp_path / "tfds_root"
    images = dh.coded_images([30, 3], S)
    dh.write_image_folder(str(root / "train"), images)
    dh.write_image_folder(str(root / "val"), {"d0": images["d0"][:2], "d1": images["d1"][:1]})
    spec = f"tfds:imagefolder:{root}"
    batches = take(pipeline.train_dataset(spec, S, 50, LATENT, seed=4), 8)
    y_org = np.concatenate([b["y_org"] for b in batches])
    assert 0.4 <= np.mean(y_org == 0) <= 0.6  # Balanced despite 10:1 (400 samples).
    for b in batches:
        for j in range(50):
            assert dh.decode_code(b["x_real"][j])[0] == b["y_org"][j]
            ref, ref2 = dh.decode_code(b["x_ref"][j]), dh.decode_code(b["x_ref2"][j])
            assert ref[0] == ref2[0] == b["y_trg"][j] and ref != ref2
    again = take(pipeline.train_dataset(spec, S, 50, LATENT, seed=4), 2)
    np.testing.assert_array_equal(again[1]["x_ref"], batches[1]["x_ref"])
    # Evaluation over another split: every image once, filenames relative to root/split.
    evals = list(pipeline.eval_dataset(f"{spec}:val", S, 8))
    names = sorted(n.decode() for _, _, f in evals for n in f.numpy())
    assert names == ["d0/0000.png", "d0/0001.png", "d1/0000.png"]
    with pytest.raises(UserError, match="split"):
        pipeline.eval_dataset(f"{spec}:test", S, 8)
