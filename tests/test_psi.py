"""ψ (psi) truncation: the mean styles and their cache, `stargan_tf.translate(..., psi=)`, the
--psi of `sample` and `translate`, the `*_psi` SavedModel signatures (also over REST), and the
training grid's reconstruction and ψ = 0.7 rows."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_module
from inference_helpers import (
    DOMAINS,
    make_model_dir,
    random_image,
    write_domain_folder,
    write_image,
)
from stargan_tf import model_dir as model_dir_lib
from stargan_tf.inference import images, mean_style, serving, translation
from stargan_tf.inference.images import to_uint8
from stargan_tf.inference.translation import latent_codes
from stargan_tf.training.samples import render_grid
from test_serving_rest import rest_to_tensors, tensors_to_rest

S = 32  # the tiny model's img_size
GAP = 2  # pixels between the cells of a grid
# The SavedModel vs the Python call (eager): the acceptance bound of issue 21. Measured here on
# the tiny model: images 1.4e-6 apart, styles 2.9e-6 (graph vs eager: fused ops).
SAVED_MODEL_ATOL = 1e-5


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(dir, networks), the mean styles computed once (10,000 codes: the slow part) and cached
    in memory and in the directory, where the tools run on it find them."""
    model_dir, nets = make_model_dir(tmp_path_factory.mktemp("model"))
    mean_style.mean_styles(nets, model_dir)
    return model_dir, nets


@pytest.fixture(scope="module")
def x_real():
    return np.random.default_rng(0).uniform(-1, 1, [3, S, S, 3]).astype(np.float32)


def _todays_translation(nets, x, domain, seed):
    """G(x, F(z of seed, domain)): what `translate` computed before ψ existed."""
    n = x.shape[0]
    y_trg = tf.fill([n], DOMAINS.index(domain))
    s_trg = nets.mapping_network(latent_codes(tf.fill([n], seed), nets.config.latent_dim), y_trg)
    return nets.generator(x, s_trg, masks=None).numpy()


def test_psi_zero_gives_the_mean_style_for_every_seed(model, x_real):
    _, nets = model
    outs = [stargan_tf.translate(nets, x_real, "dog", seed=s, psi=0) for s in (0, 5, 123456)]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    # ... which is the dog domain's mean style, and not what any of these seeds gives at ψ = 1.
    s_avg = mean_style.mean_styles(nets)[DOMAINS.index("dog")]
    mean = nets.generator(x_real, tf.repeat(s_avg[None], 3, axis=0), masks=None).numpy()
    np.testing.assert_array_equal(outs[0], mean)
    plain = [stargan_tf.translate(nets, x_real, "dog", seed=s) for s in (0, 5)]
    assert np.abs(plain[0] - plain[1]).max() > 0.05
    assert np.abs(plain[0] - outs[0]).max() > 0.05


def test_psi_one_is_todays_output_bit_for_bit(model, x_real):
    _, nets = model
    today = _todays_translation(nets, x_real, "wild", 7)
    for psi in (1.0, 1):
        np.testing.assert_array_equal(
            stargan_tf.translate(nets, x_real, "wild", seed=7, psi=psi), today
        )
    np.testing.assert_array_equal(stargan_tf.translate(nets, x_real, "wild", seed=7), today)


def test_psi_interpolates_and_extrapolates_the_style(model):
    _, nets = model
    s_trg = translation.target_style(nets, "cat", seed=3).numpy()[0]
    s_avg = mean_style.mean_styles(nets)[0]
    for psi in (0.0, 0.5, 0.7, 2.0):
        got = translation.target_style(nets, "cat", seed=3, psi=psi).numpy()[0]
        np.testing.assert_allclose(got, s_avg + psi * (s_trg - s_avg), atol=1e-6, rtol=0)
    assert np.abs(s_trg - s_avg).max() > 0.01  # (else every ψ would look right)


def test_bad_psi_in_python(model, x_real):
    _, nets = model
    for psi in (-0.1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="psi"):
            stargan_tf.translate(nets, x_real, "dog", seed=1, psi=psi)
    with pytest.raises(ValueError, match="reference"):
        stargan_tf.translate(nets, x_real, "dog", reference=x_real[0], psi=0.5)


def test_mean_styles_are_the_mean_of_the_mapping_network(model):
    _, nets = model
    num_codes = 600
    z_many = mean_style.latent_codes_for_mean(num_codes, nets.config.latent_dim)
    # Fixed codes, standard normal.
    np.testing.assert_array_equal(z_many, mean_style.latent_codes_for_mean(num_codes, 8))
    assert abs(float(tf.math.reduce_std(z_many)) - 1) < 0.05
    want = np.stack(
        [
            nets.mapping_network(z_many, tf.fill([num_codes], d)).numpy().mean(0, dtype=np.float64)
            for d in range(len(DOMAINS))
        ]
    )
    got = mean_style.mean_styles(nets, num_codes=num_codes)
    assert got.shape == (len(DOMAINS), nets.config.style_dim) and got.dtype == np.float32
    # Both means in float64, rounded to float32: half a float32 ulp (styles of magnitude ~4).
    np.testing.assert_allclose(got, want, atol=3e-7, rtol=0)


def test_the_cache_is_reused_and_recomputed_when_the_weights_change(tmp_path):
    model_dir, nets = make_model_dir(tmp_path / "model", seed=3)
    codes = 400  # Few codes: the cache works alike for any number.
    first = mean_style.mean_styles(nets, model_dir, num_codes=codes)
    path = mean_style.cache_path(model_dir, mean_style.fingerprint(nets.mapping_network, codes))
    assert os.listdir(tmp_path / "model" / model_dir_lib.MEAN_STYLES_SUBDIR) == [
        os.path.basename(path)
    ]

    # Networks loaded afresh (nothing in memory) read the file: make it say something else.
    with np.load(path) as f:
        content = dict(f)
    np.testing.assert_array_equal(content["s_avg"], first)
    marked = dict(content, s_avg=np.full_like(first, 0.25))
    np.savez(path, **marked)
    loaded = stargan_tf.load_networks(str(model_dir))
    np.testing.assert_array_equal(
        mean_style.mean_styles(loaded, model_dir, num_codes=codes), marked["s_avg"]
    )

    # A newer checkpoint with other mapping-network weights: its own entry, computed afresh.
    for weight in loaded.mapping_network.weights[:2]:
        weight.assign(weight * 1.1)
    stargan_tf.save_networks(loaded, str(model_dir), step=8)
    newer = stargan_tf.load_networks(str(model_dir))
    got = mean_style.mean_styles(newer, model_dir, num_codes=codes)
    np.testing.assert_allclose(got, mean_style.compute_mean_styles(newer, codes), atol=1e-7)
    assert np.abs(got - first).max() > 1e-3
    assert len(os.listdir(tmp_path / "model" / model_dir_lib.MEAN_STYLES_SUBDIR)) == 2
    # In memory too: weights changed in place are not served the old means.
    for weight in nets.mapping_network.weights[:2]:
        weight.assign(weight * 1.1)
    np.testing.assert_allclose(mean_style.mean_styles(nets, num_codes=codes), got, atol=1e-7)

    # A damaged cache file is recomputed (and rewritten), never a crash.
    with open(path, "wb") as f:
        f.write(b"not a numpy file")
    again = stargan_tf.load_networks(str(model_dir), step=7)
    np.testing.assert_allclose(
        mean_style.mean_styles(again, model_dir, num_codes=codes), first, atol=1e-7
    )
    with np.load(path) as f:
        np.testing.assert_array_equal(f["s_avg"], mean_style.mean_styles(again, num_codes=codes))


@pytest.fixture(scope="module")
def sampled(model, tmp_path_factory):
    model_dir, _ = model
    tmp = tmp_path_factory.mktemp("sample")
    src = write_domain_folder(str(tmp / "src"), 1, np.random.default_rng(1))  # 3 sources
    result = run_module(
        "stargan_tf.sample",
        "--checkpoint",
        model_dir,
        "--src_dir",
        tmp / "src",
        "--out_dir",
        tmp / "out",
        "--num_styles",
        2,
        "--seed",
        11,
        "--video_sources",
        2,
        "--psi=0.5,0.7,1.0",
        what="sample with three ψ values",
    )
    return tmp / "out", src, result


def test_sample_renders_one_grid_per_psi(model, sampled):
    model_dir, nets = model
    out, src, (status, stdout, stderr) = sampled
    assert status == 0, stderr[-3000:]
    ext = ".mp4" if "GIF with Pillow" not in stderr else ".gif"
    size = (3 * (S + GAP) - GAP, (1 + len(DOMAINS) * 2) * (S + GAP) - GAP)
    for suffix in ("_psi_0.5", "_psi_0.7", ""):
        with Image.open(out / f"latent{suffix}.jpg") as grid:
            assert grid.size == size, suffix
        assert os.path.getsize(out / f"video_latent{suffix}{ext}") > 0, suffix
        assert len(os.listdir(out / f"latent{suffix}")) == len(DOMAINS) * 2 * 3, suffix
    # The mean styles cached in the model directory were read, not computed afresh.
    assert len(os.listdir(os.path.join(model_dir, model_dir_lib.MEAN_STYLES_SUBDIR))) == 1
    assert "Cached the mean styles" not in stderr
    # Each folder's image is the Python call's at its ψ: of the three ψ, the closest (JPEG keeps
    # it within a few levels; test_sample.py's bound).
    name = f"{os.path.basename(os.path.dirname(src[1]))}_img0__wild_seed12.jpg"
    x = images.read_image(src[1], S)
    want = {
        psi: to_uint8(stargan_tf.translate(nets, x, "wild", seed=12, psi=psi)).astype(float)
        for psi in (0.5, 0.7, 1.0)
    }
    for suffix, psi in (("_psi_0.5", 0.5), ("_psi_0.7", 0.7), ("", 1.0)):
        cell = np.asarray(Image.open(out / f"latent{suffix}" / name)).astype(float)
        errors = {p: np.abs(cell - w).mean() for p, w in want.items()}
        assert min(errors, key=errors.get) == psi and errors[psi] < 8, (suffix, errors)


def test_translate_cli_psi(model, sampled, tmp_path):
    model_dir, nets = model
    rng = np.random.default_rng(5)
    write_image(str(tmp_path / "in.png"), random_image(rng, 40, 40))
    status, stdout, stderr = run_module(
        "stargan_tf.translate",
        "--checkpoint",
        model_dir,
        "--input",
        tmp_path / "in.png",
        "--output",
        tmp_path / "out.png",
        "--target_domain",
        "cat",
        "--seed",
        4,
        "--psi",
        0.7,
        what="translate one image at psi 0.7",
    )
    assert status == 0, stderr[-3000:]
    assert "psi 0.7" in stdout
    x = images.read_image(str(tmp_path / "in.png"), S)
    want = to_uint8(stargan_tf.translate(nets, x, "cat", seed=4, psi=0.7)).astype(int)
    got = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    assert np.abs(got - want).max() <= 1  # (batch-of-1 graph vs eager generator: rounding)


def test_bad_psi_flags_exit_2_with_one_line(model, tmp_path):
    model_dir, _ = model
    write_image(str(tmp_path / "in.png"), random_image(np.random.default_rng(0), 32, 32))
    common = ["--checkpoint", model_dir, "--src_dir", tmp_path, "--out_dir", tmp_path / "o"]
    assert_usage_error(run_module("stargan_tf.sample", *common, "--psi=-0.5"), "--psi=-0.5", ">= 0")
    assert_usage_error(run_module("stargan_tf.sample", *common, "--psi=0.7,abc"), "--psi=abc")
    assert_usage_error(run_module("stargan_tf.sample", *common, "--psi=0.7,0.70"), "repeats")
    one = [
        "--checkpoint",
        model_dir,
        "--input",
        tmp_path / "in.png",
        "--output",
        tmp_path / "out.png",
        "--target_domain",
        "cat",
    ]
    assert_usage_error(run_module("stargan_tf.translate", *one, "--psi=-1"), "--psi=-1", ">= 0")
    assert_usage_error(
        run_module("stargan_tf.translate", *one, "--psi=0.5", "--reference", tmp_path / "in.png"),
        "--psi=0.5",
        "--reference",
    )


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    model_dir, nets = model
    path = tmp_path_factory.mktemp("export") / "1"
    serving.write_saved_model(nets, str(path), mean_styles=mean_style.mean_styles(nets, model_dir))
    return tf.saved_model.load(str(path))


def test_saved_model_psi_signatures_match_the_python_call(model, x_real, exported):
    _, nets = model
    sig = exported.signatures
    domains, seeds, psis = ["cat", "wild", "dog"], [3, 3, 9], [0.0, 0.7, 1.5]
    out = sig["translate_latent_psi"](
        images=tf.constant(x_real),
        target_domain=tf.constant([0, 2, 1], tf.int64),
        seed=tf.constant(seeds, tf.int64),
        psi=tf.constant(psis),
    )["x_fake"].numpy()
    for i in range(3):
        want = stargan_tf.translate(nets, x_real[i], domains[i], seed=seeds[i], psi=psis[i])
        np.testing.assert_allclose(out[i], want, atol=SAVED_MODEL_ATOL, rtol=0)
    # ψ = 1 is the unchanged translate_latent; ψ = 0.7 is not.
    ids, seeds_t = tf.constant([0, 2, 1], tf.int64), tf.constant(seeds, tf.int64)
    plain = sig["translate_latent"](images=tf.constant(x_real), target_domain=ids, seed=seeds_t)[
        "x_fake"
    ].numpy()
    at_one = sig["translate_latent_psi"](
        images=tf.constant(x_real), target_domain=ids, seed=seeds_t, psi=tf.ones([3])
    )["x_fake"].numpy()
    np.testing.assert_allclose(at_one, plain, atol=SAVED_MODEL_ATOL, rtol=0)
    assert np.abs(out[1] - plain[1]).max() > 0.01
    # The styles, and the mean styles the export carries.
    s_trg = sig["style_from_latent_psi"](target_domain=ids, seed=seeds_t, psi=tf.constant(psis))[
        "s_trg"
    ].numpy()
    for i in range(3):
        want = translation.target_style(nets, domains[i], seed=seeds[i], psi=psis[i]).numpy()[0]
        np.testing.assert_allclose(s_trg[i], want, atol=SAVED_MODEL_ATOL, rtol=0)
    s_avg = sig["mean_style"](target_domain=tf.constant([2, 0], tf.int64))["s_avg"].numpy()
    np.testing.assert_array_equal(s_avg, mean_style.mean_styles(nets)[[2, 0]])
    # Bad ψ: an error naming it.
    with pytest.raises(tf.errors.InvalidArgumentError, match="psi must be finite and >= 0"):
        sig["style_from_latent_psi"](
            target_domain=ids, seed=seeds_t, psi=tf.constant([0.5, -0.1, 1.0])
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="psi needs one value per image"):
        sig["style_from_latent_psi"](target_domain=ids, seed=seeds_t, psi=tf.constant([0.5]))


def test_psi_over_rest_matches_the_python_call(model, x_real, exported):
    _, nets = model
    sig = exported.signatures["translate_latent_psi"]
    rows = [
        {"images": x_real[i].tolist(), "target_domain": 1, "seed": 7, "psi": psi}
        for i, psi in enumerate((0.5, 0.7))
    ]
    body = json.dumps({"signature_name": "translate_latent_psi", "instances": rows})
    response = json.loads(json.dumps(tensors_to_rest(sig(**rest_to_tensors(body, sig)), True)))
    for i, psi in enumerate((0.5, 0.7)):
        want = stargan_tf.translate(nets, x_real[i], "dog", seed=7, psi=psi)
        np.testing.assert_allclose(
            np.array(response["predictions"][i]["x_fake"]), want, atol=SAVED_MODEL_ATOL, rtol=0
        )
    # Columnar, one input per image, on the style signature.
    sig = exported.signatures["style_from_latent_psi"]
    body = json.dumps(
        {
            "signature_name": "style_from_latent_psi",
            "inputs": {"target_domain": [0], "seed": [2], "psi": [0.0]},
        }
    )
    out = tensors_to_rest(sig(**rest_to_tensors(body, sig)), False)["outputs"]
    np.testing.assert_array_equal(
        np.array(out["s_trg"], np.float32)[0], mean_style.mean_styles(nets)[0]
    )  # ψ = 0: the constant itself


def test_training_grid_has_the_reconstruction_and_psi_rows(model):
    _, nets = model
    rng = np.random.default_rng(3)
    x_src = rng.uniform(-1, 1, [3, S, S, 3]).astype(np.float32)
    y_src = np.array([0, 1, 2], np.int32)
    x_ref = rng.uniform(-1, 1, [2, S, S, 3]).astype(np.float32)
    y_ref = np.array([1, 2], np.int32)
    z_trg = rng.standard_normal([3, nets.config.latent_dim]).astype(np.float32)
    grid = render_grid(nets, x_src, y_src, x_ref, y_ref, z_trg)
    # Rows: sources, reconstructions, 3 domains at ψ = 1, 3 at ψ = 0.7, 2 references.
    assert grid.shape == ((1 + 1 + 3 + 3 + 2) * (S + GAP) - GAP, 4 * (S + GAP) - GAP, 3)

    def cells(r):  # row r without its first cell: [3, S, S, 3]
        band = grid[r * (S + GAP) : r * (S + GAP) + S]
        return np.stack([band[:, c * (S + GAP) : c * (S + GAP) + S] for c in range(1, 4)])

    g, e = nets.generator, nets.style_encoder
    s_ref = e(x_ref, y_ref).numpy()
    x_fake = g(x_src, s_ref[[0, 1, 0]], masks=None)  # source i in the style of reference i % 2
    x_rec = g(x_fake, e(x_src, y_src), masks=None)
    assert np.abs(cells(1).astype(int) - to_uint8(x_rec)).max() <= 1
    s_avg = mean_style.compute_mean_styles(nets, 1000)
    for d in range(3):
        s_trg = nets.mapping_network(np.repeat(z_trg[d : d + 1], 3, axis=0), tf.fill([3], d))
        s_07 = s_avg[d] + 0.7 * (s_trg - s_avg[d])
        assert np.abs(cells(2 + d).astype(int) - to_uint8(g(x_src, s_trg))).max() <= 1, d
        assert np.abs(cells(5 + d).astype(int) - to_uint8(g(x_src, s_07))).max() <= 1, d
        assert np.abs(cells(5 + d).astype(int) - cells(2 + d)).mean() > 2, d
