"""Translating images: the Python call `stargan_tf.translate` and `python -m stargan_tf.translate`
(a folder with a progress bar, one image), with one-line errors for bad inputs."""

import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_module
from inference_helpers import TINY, make_model_dir, random_image, write_image
from stargan_tf.errors import UserError
from stargan_tf.inference import images
from stargan_tf.inference.translation import latent_codes
from stargan_tf.inference.images import to_uint8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("model"))  # (dir, networks)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of 5 images of various sizes and formats, nested, and a reference image."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(2)
    rel = ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.JPG", "e.webp"]
    for i, name in enumerate(rel):
        write_image(str(root / "in" / name), random_image(rng, 20 + 7 * i, 45 - 4 * i))
    write_image(str(root / "ref.jpg"), random_image(rng, 50, 50))
    return root, rel


def test_translate_equals_the_networks(model):
    _, nets = model
    rng = np.random.default_rng(0)
    x_real = rng.uniform(-1, 1, [3, 32, 32, 3]).astype(np.float32)
    x_ref = rng.uniform(-1, 1, [32, 32, 3]).astype(np.float32)
    y = np.full([3], 1)
    # Latent-guided: the seed's code, the same for every image.
    s_lat = nets.mapping_network(latent_codes([4] * 3, TINY.latent_dim), y)
    np.testing.assert_allclose(
        stargan_tf.translate(nets, x_real, "dog", seed=4), nets.generator(x_real, s_lat), atol=1e-6
    )
    # Reference-guided: the reference's style in the target domain.
    s_ref = nets.style_encoder(np.repeat(x_ref[None], 3, 0), y)
    np.testing.assert_allclose(
        stargan_tf.translate(nets, x_real, 1, reference=x_ref),
        nets.generator(x_real, s_ref),
        atol=1e-6,
    )
    # One target domain and one reference per image.
    x_refs = rng.uniform(-1, 1, [3, 32, 32, 3]).astype(np.float32)
    y = np.array([0, 2, 1])
    np.testing.assert_allclose(
        stargan_tf.translate(nets, x_real, ["cat", "wild", "dog"], reference=x_refs),
        nets.generator(x_real, nets.style_encoder(x_refs, y)),
        atol=1e-6,
    )
    # No reference and no seed: seed 0.
    np.testing.assert_allclose(
        stargan_tf.translate(nets, x_real, "cat"), stargan_tf.translate(nets, x_real, "cat", seed=0)
    )


def test_translate_takes_uint8_images_of_any_size(model, inputs):
    _, nets = model
    root, rel = inputs
    # A PNG (20 x 45): PIL and TensorFlow decode it alike (JPEG decoders differ a little).
    image = np.asarray(Image.open(root / "in" / rel[0]))
    x_fake = stargan_tf.translate(nets, image, "wild", seed=9)
    assert x_fake.shape == (32, 32, 3)  # one image in, one out
    x_real = images.read_image(str(root / "in" / rel[0]), 32)  # decoded and resized as in training
    np.testing.assert_allclose(
        x_fake, stargan_tf.translate(nets, x_real, "wild", seed=9), atol=1e-6
    )


def test_translate_refuses_bad_arguments(model):
    _, nets = model
    x_real = np.zeros([1, 32, 32, 3], np.float32)
    with pytest.raises(UserError, match="Unknown target domain 'cow'.*0=cat, 1=dog, 2=wild"):
        stargan_tf.translate(nets, x_real, "cow")
    with pytest.raises(UserError, match="out of range"):
        stargan_tf.translate(nets, x_real, 3)
    with pytest.raises(ValueError, match="not both"):
        stargan_tf.translate(nets, x_real, 0, reference=x_real, seed=1)
    face = dataclasses.replace(nets, config=dataclasses.replace(TINY, w_hpf=1.0))
    with pytest.raises(UserError, match="no FAN is loaded"):
        stargan_tf.translate(face, x_real, 0)


def test_translate_stays_callable_after_its_command_line_module_is_imported(model):
    # `import stargan_tf.translate` binds the package attribute to the module (Python's import
    # system does), over the lazily exported function: the module is callable for that.
    import stargan_tf.translate as module

    _, nets = model
    x_real = np.zeros([1, 32, 32, 3], np.float32)
    assert stargan_tf.translate is module
    np.testing.assert_array_equal(
        stargan_tf.translate(nets, x_real, 1, seed=2), module(nets, x_real, 1, seed=2)
    )


def test_cli_translates_a_folder_with_a_progress_bar(model, inputs, tmp_path):
    model_dir, nets = model
    root, rel = inputs
    status, stdout, stderr = run_module(
        "stargan_tf.translate",
        "--checkpoint",
        model_dir,
        "--input_dir",
        root / "in",
        "--output_dir",
        tmp_path / "out",
        "--target_domain",
        "dog",
        "--seed",
        3,
        "--batch_size",
        2,
    )
    assert status == 0, stderr[-3000:]
    assert "5/5" in stderr and "img/s" in stderr
    assert "Translated 5 images" in stdout and "dog, seed 3" in stdout
    for name in rel:
        out = np.asarray(Image.open(tmp_path / "out" / (os.path.splitext(name)[0] + ".png")))
        assert out.shape == (32, 32, 3)
        expected = to_uint8(
            stargan_tf.translate(
                nets, images.read_image(str(root / "in" / name), 32), "dog", seed=3
            )
        )
        assert np.abs(out.astype(int) - expected).max() <= 1, name


def test_cli_translates_one_image_with_a_reference(model, inputs, tmp_path):
    model_dir, nets = model
    root, rel = inputs
    status, stdout, stderr = run_module(
        "stargan_tf.translate",
        "--checkpoint",
        model_dir,
        "--input",
        root / "in" / rel[2],
        "--output",
        tmp_path / "one.png",
        "--target_domain",
        "2",
        "--reference",
        root / "ref.jpg",
    )
    assert status == 0, stderr[-3000:]
    assert "wild, reference" in stdout
    expected = to_uint8(
        stargan_tf.translate(
            nets,
            images.read_image(str(root / "in" / rel[2]), 32),
            "wild",
            reference=images.read_image(str(root / "ref.jpg"), 32),
        )
    )
    out = np.asarray(Image.open(tmp_path / "one.png")).astype(int)
    assert np.abs(out - expected).max() <= 1


def test_cli_bad_inputs_are_usage_errors(model, inputs, tmp_path):
    model_dir, _ = model
    root, _ = inputs
    (tmp_path / "empty").mkdir()
    common = ["--output_dir", tmp_path / "out", "--target_domain", "dog"]
    assert_usage_error(
        run_module(
            "stargan_tf.translate",
            "--checkpoint",
            tmp_path / "nope",
            "--input_dir",
            root / "in",
            *common,
        ),
        "nope",
        "not a directory",
    )
    assert_usage_error(
        run_module(
            "stargan_tf.translate",
            "--checkpoint",
            model_dir,
            "--input_dir",
            tmp_path / "empty",
            *common,
        ),
        "empty",
        "holds no images",
    )
    assert_usage_error(
        run_module(
            "stargan_tf.translate",
            "--checkpoint",
            model_dir,
            "--input_dir",
            root / "in",
            "--output_dir",
            tmp_path / "out",
            "--target_domain",
            "cow",
        ),
        "Unknown target domain 'cow'",
        "0=cat, 1=dog, 2=wild",
    )
    assert not (tmp_path / "out").exists()
