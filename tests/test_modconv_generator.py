"""The generator with the modulated-convolution decoder (`decoder="modconv"`): pinned sizes,
the high-pass path, gradients to every style affine layer, the config and checkpoints that carry
the decoder, and the refusals (official weights, a checkpoint of the other decoder)."""

import numpy as np
import pytest
import tensorflow as tf

import stargan_tf
from stargan_tf import model_dir
from stargan_tf.official import checkpoint as oc
from stargan_tf.config import ModelConfig
from stargan_tf.errors import UserError
from stargan_tf.layers.gen_resblk import GenResBlk
from stargan_tf.networks import count_params
from stargan_tf.networks.generator import Generator
from stargan_tf.training import config as config_lib
from support import tiny

SMALL = dict(img_size=64, style_dim=8, latent_dim=4, num_domains=2, max_conv_dim=32, dim_in=8)

# Generator parameter counts at the official sizes (AFHQ: w_hpf 0, style_dim 64, dim_in
# 2**14 // img_size); modconv at 512 px is pinned with configs/afhq512.cfg in test_networks.py.
GENERATOR_COUNTS = {(256, "modconv"): 33_740_562, (512, "adain"): 33_964_099}

# The exported translate_reference vs the Keras networks called eagerly: FACTOR x the worst max
# |difference| seen. Measured with a throwaway script, each setting a separate process:
# TF_NUM_INTRAOP_THREADS=1 and 2, op determinism off and on, oneDNN off or limited to AVX2 or
# SSE4.1 kernels (ONEDNN_MAX_CPU_ISA), repeats, on 24 random initialisations (the test draws its
# own): 56 exports. Worst 6.0e-6 (SSE4.1 kernels; 4.8e-6 with the default ones), from the graph
# optimiser's fused ops; the eager outputs did not move with threads or op determinism.
FACTOR = 3
EXPORT_ATOL = FACTOR * 6.0e-6


@pytest.mark.parametrize("img_size,decoder", sorted(GENERATOR_COUNTS))
def test_generator_parameter_counts(img_size, decoder):
    g = Generator(img_size, 64, 512, w_hpf=0, decoder=decoder)
    g(np.zeros([1, img_size, img_size, 3], np.float32), np.zeros([1, 64], np.float32))
    assert count_params(g) == GENERATOR_COUNTS[(img_size, decoder)]


def small_generator(w_hpf):
    g = Generator(64, 8, 32, w_hpf=w_hpf, dim_in=8, decoder="modconv")
    g(np.zeros([1, 64, 64, 3], np.float32), np.zeros([1, 8], np.float32))
    return g


@pytest.mark.parametrize("w_hpf", [0.0, 1.0])
def test_modconv_generator_structure_and_gradients_to_every_style_affine(w_hpf):
    g = small_generator(w_hpf)
    assert all(isinstance(b, GenResBlk) for b in g.decode)
    # Same encoder and channel plan as the AdaIN generator: 64 px -> 2 (+1 with w_hpf) up blocks.
    adain = Generator(64, 8, 32, w_hpf=w_hpf, dim_in=8)
    assert len(g.decode) == len(adain.decode) == 4 + (1 if w_hpf else 0)
    assert [(b.dim_in, b.dim_out, b.upsample) for b in g.decode] == [
        (b.dim_in, b.dim_out, b.upsample) for b in adain.decode
    ]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, [2, 64, 64, 3]).astype(np.float32))
    s = tf.constant(rng.normal(size=[2, 8]).astype(np.float32))
    masks = None
    if w_hpf:
        masks = (
            tf.constant(rng.uniform(0, 1, [2, 64, 64, 1]).astype(np.float32)),
            tf.constant(rng.uniform(0, 1, [2, 64, 64, 1]).astype(np.float32)),
        )
    with tf.GradientTape() as tape:
        y = g(x, s, masks)
        loss = tf.reduce_sum(y * rng.normal(size=y.shape))
    assert y.shape == (2, 64, 64, 3) and y.dtype == tf.float32
    grads = dict(
        zip([v.path for v in g.trainable_variables], tape.gradient(loss, g.trainable_variables))
    )
    affine = [p for p in grads if "affine" in p]
    assert len(affine) == 2 * 3 * len(g.decode)  # kernel + bias of conv1, conv2, to_rgb per block
    for path in affine:
        assert grads[path] is not None and float(tf.reduce_max(tf.abs(grads[path]))) > 0, path
    if w_hpf:
        # The high-pass features are added before ToRGB: other masks, another image.
        other = (masks[0] * 0, masks[1] * 0)
        assert float(tf.reduce_max(tf.abs(g(x, s, other) - y))) > 1e-4
    names = [key for key, _, _ in g.official_weights()]
    assert len(names) == len(set(names)) == len(g.weights)


def test_decoder_in_config_checkpoints_and_get_config(tmp_path):
    config = ModelConfig(**SMALL, w_hpf=0, decoder="modconv")
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert (
        ModelConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "decoder"}).decoder
        == "adain"
    )  # older config.json
    with pytest.raises(ValueError, match="decoder='stylegan' must be one of adain, modconv"):
        ModelConfig(decoder="stylegan")
    nets = stargan_tf.build_networks(config, discriminator=False)
    g = nets.generator
    clone = Generator.from_config(g.get_config())
    assert clone.decoder == "modconv"
    model_dir.save_networks(nets, str(tmp_path / "model"), step=3)
    assert model_dir.read_model_config(str(tmp_path / "model")).decoder == "modconv"
    loaded = model_dir.load_networks(str(tmp_path / "model"))
    x = np.random.default_rng(0).uniform(-1, 1, [1, 64, 64, 3]).astype(np.float32)
    s = np.ones([1, 8], np.float32)
    np.testing.assert_array_equal(loaded.generator(x, s), g(x, s))


def test_a_checkpoint_of_the_other_decoder_is_refused(tmp_path):
    adain = ModelConfig(**SMALL, w_hpf=0)
    modconv = ModelConfig(**SMALL, w_hpf=0, decoder="modconv")
    # Resuming a run with the other decoder: the differences name it.
    saved = config_lib.TrainConfig(model=adain, workdir=str(tmp_path))
    current = config_lib.TrainConfig(model=modconv, workdir=str(tmp_path))
    assert config_lib.differences(saved, current) == ["decoder: 'adain' (checkpoint) vs 'modconv'"]
    # A training config written before the decoder moved into the model config.
    old = saved.to_dict()
    del old["model"]["decoder"]
    old["decoder"] = "adain"
    assert config_lib.TrainConfig.from_dict(old) == saved
    # --init_from a model directory of the other decoder.
    from stargan_tf.training.trainer import Trainer

    model_dir.save_networks(stargan_tf.build_networks(adain), str(tmp_path / "adain"), ema=False)
    config = config_lib.TrainConfig(
        model=modconv,
        workdir=str(tmp_path / "run"),
        init_from=str(tmp_path / "adain"),
        batch_size=1,
    )
    with pytest.raises(UserError, match="another config.*decoder: adain vs modconv"):
        Trainer(config, tf.distribute.get_strategy(), None)


def test_official_checkpoints_refuse_modconv(small64_dir):
    state = oc.read_official_checkpoint(str(small64_dir / "nets.ckpt"))
    config, inferred = oc.resolve_config(state, "nets.ckpt")
    assert config.decoder == inferred["decoder"] == "adain"
    with pytest.raises(oc.ConversionError, match="no official modconv weights"):
        oc.resolve_config(state, "nets.ckpt", decoder="modconv")
    with pytest.raises(oc.ConversionError, match="hold the AdaIN decoder"):
        oc.networks_from_state(state, ModelConfig(**{**config.to_dict(), "decoder": "modconv"}))


def test_export_of_a_modconv_model_translates_as_the_networks(tmp_path):
    from stargan_tf.inference import models, serving

    config = tiny(decoder="modconv", domain_names=())
    model_dir.save_networks(
        stargan_tf.build_networks(config, discriminator=False), str(tmp_path / "model")
    )
    networks, ema = models.load_inference_networks(str(tmp_path / "model"))
    path = serving.export_versioned(networks, str(tmp_path / "base"))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, [2, 32, 32, 3]).astype(np.float32)
    x_ref = rng.uniform(-1, 1, [2, 32, 32, 3]).astype(np.float32)
    y = np.array([1, 0], np.int64)
    sig = tf.saved_model.load(path).signatures["translate_reference"]
    x_fake = sig(
        images=tf.constant(x), reference_images=tf.constant(x_ref), target_domain=tf.constant(y)
    )["x_fake"]
    want = networks.generator(x, networks.style_encoder(x_ref, y))
    np.testing.assert_allclose(x_fake, want, atol=EXPORT_ATOL, rtol=0)
    # The styles of the other domains (a wiring mistake): outside the tolerance.
    wrong = networks.generator(x, networks.style_encoder(x_ref, y[::-1]))
    assert np.abs(x_fake - wrong).max() > EXPORT_ATOL


def test_training_iterations_with_modconv_then_resuming_with_adain_is_refused(tmp_path):
    import json

    from stargan_tf.training.trainer import Trainer

    model = tiny(decoder="modconv", domain_names=())
    rng = np.random.default_rng(0)
    batch = {
        "x_real": rng.integers(0, 256, [2, 32, 32, 3], dtype=np.uint8),
        "y_org": np.array([0, 1], np.int32),
        "y_trg": np.array([1, 0], np.int32),
        "x_ref": rng.integers(0, 256, [2, 32, 32, 3], dtype=np.uint8),
        "x_ref2": rng.integers(0, 256, [2, 32, 32, 3], dtype=np.uint8),
        "z_trg": rng.normal(size=[2, 4]).astype(np.float32),
        "z_trg2": rng.normal(size=[2, 4]).astype(np.float32),
    }
    data = tf.data.Dataset.from_tensors(batch).repeat()
    config = config_lib.TrainConfig(
        model=model,
        workdir=str(tmp_path),
        batch_size=2,
        total_iters=2,
        save_every=2,
        sample_every=100,
    )
    trainer = Trainer(config, tf.distribute.get_strategy(), data)
    before = [v.numpy() for v in trainer.nets.generator.trainable_variables]
    metrics = trainer.train()
    assert all(np.isfinite(v) for v in metrics.values())
    after = trainer.nets.generator.trainable_variables
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(before, after))  # all updated
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model"]["decoder"] == "modconv"
    assert stargan_tf.load_networks(str(tmp_path)).generator.decoder == "modconv"
    adain = config_lib.TrainConfig(
        **{
            **config.__dict__,
            "model": ModelConfig(
                **{**model.to_dict(), "domain_names": model.domain_names, "decoder": "adain"}
            ),
        }
    )
    with pytest.raises(
        UserError, match="another config: decoder: 'modconv' .checkpoint. vs 'adain'"
    ):
        Trainer(adain, tf.distribute.get_strategy(), data).restore()
