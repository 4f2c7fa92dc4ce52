"""The four networks: official sizes (pinned parameter counts), shapes at every image size,
call conventions, initialisation and config round-trips."""

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import stargan_tf
from support import REPO
from stargan_tf import cli
from stargan_tf.config import ModelConfig
from stargan_tf.networks import count_params

# Official parameter counts (clovaai/stargan-v2 networks at their default sizes), for the model
# each training flagfile in configs/ describes, with the official data's domain count.
OFFICIAL_COUNTS = {
    ("celeba_hq256.cfg", 2): {
        "generator": 43_467_395,
        "mapping_network": 2_438_272,
        "style_encoder": 20_916_928,
        "discriminator": 20_852_290,
    },
    ("afhq256.cfg", 3): {
        "generator": 33_892_995,
        "mapping_network": 3_259_072,
        "style_encoder": 20_949_760,
        "discriminator": 20_852_803,
    },
    # The 512 px config uses the modulated-convolution decoder (the official AdaIN generator at
    # 512 px, 33_964_099 parameters, is pinned in test_modconv_generator.py).
    ("afhq512.cfg", 3): {
        "generator": 33_807_765,
        "mapping_network": 3_259_072,
        "style_encoder": 20_978_656,
        "discriminator": 20_881_699,
    },
}


def config_from_flagfile(name, num_domains):
    """The ModelConfig a configs/ flagfile states, parsed by the tools' own flag definitions."""
    flag_values = flags.FlagValues()
    cli.define_model_flags(flag_values, defaults=cli.TRAINING_DEFAULTS)
    # The flagfile also holds training flags, which these flag values do not define.
    flag_values(["prog", f"--flagfile={REPO / 'configs' / name}"], known_only=True)
    overrides, _ = cli.model_overrides(flag_values)
    overrides["num_domains"] = num_domains
    return ModelConfig(**overrides)


@pytest.mark.parametrize("name,num_domains", sorted(OFFICIAL_COUNTS))
def test_official_parameter_counts(name, num_domains):
    networks = stargan_tf.build_networks(config_from_flagfile(name, num_domains))
    assert {n: count_params(m) for n, m in networks.items()} == OFFICIAL_COUNTS[(name, num_domains)]


def test_official_dim_in_default():
    # dim_in=None means the official 2**14 // img_size, for every network.
    for img_size in (64, 256, 512):
        g = stargan_tf.Generator(img_size=img_size)
        e = stargan_tf.StyleEncoder(img_size=img_size)
        d = stargan_tf.Discriminator(img_size=img_size)
        assert g.dim_in is None
        assert g.from_rgb.filters == e.shared.conv_in.filters == 2**14 // img_size
        assert d.main.conv_in.filters == 2**14 // img_size


def test_official_constructor_defaults():
    g = stargan_tf.Generator()
    assert (g.img_size, g.style_dim, g.max_conv_dim, g.w_hpf, g.dim_in) == (256, 64, 512, 1.0, None)
    f = stargan_tf.MappingNetwork()
    assert (f.latent_dim, f.style_dim, f.num_domains) == (16, 64, 2)
    e = stargan_tf.StyleEncoder()
    assert (e.img_size, e.style_dim, e.num_domains, e.max_conv_dim) == (256, 64, 2, 512)
    d = stargan_tf.Discriminator()
    assert (d.img_size, d.num_domains, d.max_conv_dim) == (256, 2, 512)


@pytest.mark.parametrize("img_size", [32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize("w_hpf", [0.0, 1.0])
def test_shapes_at_every_size(img_size, w_hpf):
    config = ModelConfig(
        img_size=img_size,
        style_dim=8,
        latent_dim=4,
        num_domains=3,
        max_conv_dim=16,
        w_hpf=w_hpf,
        dim_in=4,
    )
    nets = stargan_tf.build_networks(config)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, [2, img_size, img_size, 3]).astype(np.float32)
    y = np.array([0, 2])
    s = nets.mapping_network(rng.normal(size=[2, 4]).astype(np.float32), y)
    assert s.shape == (2, 8)
    assert nets.style_encoder(x, y).shape == (2, 8)
    masks = None
    if w_hpf > 0:
        m = rng.uniform(0, 1, [2, 256, 256, 1]).astype(np.float32)
        masks = (m, m)
    fake = nets.generator(x, s, masks=masks)
    assert fake.shape == (2, img_size, img_size, 3) and fake.dtype == tf.float32
    assert nets.discriminator(x, y).shape == (2,)
    assert nets.discriminator(x).shape == (2, 3)


def test_masks_change_the_output_only_with_hpf():
    config = ModelConfig(
        img_size=64, style_dim=8, latent_dim=4, num_domains=2, max_conv_dim=16, w_hpf=1, dim_in=8
    )
    nets = stargan_tf.build_networks(config)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, [1, 64, 64, 3]).astype(np.float32)
    s = rng.normal(size=[1, 8]).astype(np.float32)
    zeros = np.zeros([1, 256, 256, 1], np.float32)
    ones = np.ones([1, 256, 256, 1], np.float32)
    without = nets.generator(x, s).numpy()
    # A zero mask adds HighPass(0) = 0: the same as no masks.
    np.testing.assert_allclose(
        nets.generator(x, s, masks=(zeros, zeros)).numpy(), without, atol=1e-6
    )
    assert np.abs(nets.generator(x, s, masks=(ones, ones)).numpy() - without).max() > 1e-3

    plain = stargan_tf.build_networks(
        ModelConfig(
            img_size=64,
            num_domains=2,
            w_hpf=0,
            dim_in=8,
            max_conv_dim=16,
            style_dim=8,
            latent_dim=4,
        )
    )
    with pytest.raises(ValueError, match="w_hpf = 0"):
        plain.generator(x, s, masks=(ones, ones))


def test_discriminator_picks_the_domain_logit():
    nets = stargan_tf.build_networks(
        ModelConfig(
            img_size=32,
            num_domains=4,
            dim_in=8,
            max_conv_dim=16,
            style_dim=8,
            latent_dim=4,
            w_hpf=0,
        )
    )
    x = np.random.default_rng(2).uniform(-1, 1, [3, 32, 32, 3]).astype(np.float32)
    y = np.array([3, 0, 2])
    all_logits = nets.discriminator(x).numpy()
    np.testing.assert_allclose(
        nets.discriminator(x, y).numpy(), all_logits[np.arange(3), y], rtol=1e-6
    )


def test_style_heads_are_picked_per_sample():
    f = stargan_tf.MappingNetwork(latent_dim=4, style_dim=8, num_domains=3)
    z = np.random.default_rng(3).normal(size=[3, 4]).astype(np.float32)
    per_domain = [f(z, np.full([3], d)).numpy() for d in range(3)]
    mixed = f(z, np.array([2, 0, 1])).numpy()
    np.testing.assert_allclose(
        mixed, np.stack([per_domain[2][0], per_domain[0][1], per_domain[1][2]]), rtol=1e-6
    )


def test_wrong_image_size_is_a_clear_error():
    nets = stargan_tf.build_networks(
        ModelConfig(img_size=32, dim_in=8, max_conv_dim=16, style_dim=8, latent_dim=4, w_hpf=0)
    )
    x = np.zeros([1, 64, 64, 3], np.float32)
    with pytest.raises(ValueError, match=r"\[N, 32, 32, 3\].*img_size=32"):
        nets.style_encoder(x, np.zeros([1], np.int32))
    with pytest.raises(ValueError, match="img_size=32"):
        nets.discriminator(x)


@pytest.mark.parametrize("img_size", [16, 48, 100, "256"])
def test_unsupported_img_size(img_size):
    with pytest.raises(ValueError, match="power of two"):
        stargan_tf.Generator(img_size=img_size)
    with pytest.raises(ValueError, match="power of two"):
        ModelConfig(img_size=img_size)


def test_official_initialisation():
    nets = stargan_tf.build_networks(ModelConfig(img_size=64, dim_in=64, max_conv_dim=128, w_hpf=0))
    for _, net in nets.items():
        for var in net.weights:
            name = var.path
            value = var.numpy()
            if name.endswith("bias") or name.endswith("beta"):
                assert not value.any(), name  # biases start at 0
            elif name.endswith("gamma"):
                assert (value == 1).all(), name  # instance-norm scales start at 1
            else:
                fan_in = np.prod(value.shape[:-1])
                std = np.sqrt(2.0 / fan_in)  # Kaiming normal, fan_in, gain sqrt(2)
                if value.size >= 4096:
                    assert abs(value.std() / std - 1) < 0.1, name
    # Untruncated: the 512x512 mapping layers have draws beyond 2 std (a truncated normal has none).
    kernel = nets.mapping_network.shared[1].kernel.numpy()
    assert (np.abs(kernel) > 2 * np.sqrt(2.0 / 512)).mean() > 0.03


def test_get_config_round_trip():
    config = ModelConfig(
        img_size=64, style_dim=8, latent_dim=4, num_domains=3, max_conv_dim=32, w_hpf=1, dim_in=16
    )
    nets = stargan_tf.build_networks(config)
    x = np.zeros([1, 64, 64, 3], np.float32)
    y = np.zeros([1], np.int32)
    for name, net in nets.items():
        clone = type(net).from_config(net.get_config())
        assert clone.get_config() == net.get_config()
        if name == "generator":
            clone(x, np.zeros([1, 8], np.float32))
        elif name == "mapping_network":
            clone(np.zeros([1, 4], np.float32), y)
        else:
            clone(x, y)
        assert count_params(clone) == count_params(net), name
        assert [v.shape for v in clone.weights] == [v.shape for v in net.weights], name


def test_model_config_round_trip_and_validation():
    config = ModelConfig(img_size=128, num_domains=3, w_hpf=0, domain_names=("cat", "dog", "wild"))
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig(num_domains=2).domain_names == ("domain0", "domain1")
    with pytest.raises(ValueError, match="2 names.*num_domains=3"):
        ModelConfig(num_domains=3, domain_names=("a", "b"))
    with pytest.raises(ValueError, match="Unknown model config keys: hidden_dim"):
        ModelConfig.from_dict({**config.to_dict(), "hidden_dim": 512})
