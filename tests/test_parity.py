"""Numerical parity with the official PyTorch code, on the fixtures it produced.

`nets.ckpt` is converted into our networks; every network output stored by the official code is
reproduced from the same inputs within 1e-4 (cycle reconstructions are computed from our own fakes,
as the official loss does, so errors compound honestly).
"""

import numpy as np
import pytest
import tensorflow as tf

import stargan_tf

TOLERANCE = 1e-4
OUTPUTS = ("s_lat", "s_lat2", "s_ref", "s_ref2", "s_org", "fake_lat", "fake_ref", "rec_lat",
           "rec_ref", "d_real", "d_fake", "d_real_all", "d_fake_all")


def official_outputs(nets, d):
    """Our outputs for the fixture's inputs, named as the fixture names the official ones."""
    masks = (d["masks_0"], d["masks_1"]) if "masks_0" in d else None
    masks_cyc = (d["masks_cyc_0"], d["masks_cyc_1"]) if "masks_cyc_0" in d else None
    out = {
        "s_lat": nets.mapping_network(d["z_trg"], d["y_trg"]),
        "s_lat2": nets.mapping_network(d["z_trg2"], d["y_trg"]),
        "s_ref": nets.style_encoder(d["x_ref"], d["y_trg"]),
        "s_ref2": nets.style_encoder(d["x_ref2"], d["y_trg"]),
        "s_org": nets.style_encoder(d["x"], d["y_org"]),
    }
    out["fake_lat"] = nets.generator(d["x"], out["s_lat"], masks=masks)
    out["fake_ref"] = nets.generator(d["x"], out["s_ref"], masks=masks)
    out["rec_lat"] = nets.generator(out["fake_lat"], out["s_org"], masks=masks_cyc)
    out["rec_ref"] = nets.generator(out["fake_ref"], out["s_org"], masks=masks_cyc)
    out["d_real"] = nets.discriminator(d["x"], d["y_org"])
    out["d_fake"] = nets.discriminator(out["fake_lat"], d["y_trg"])
    out["d_real_all"] = nets.discriminator(d["x"])
    out["d_fake_all"] = nets.discriminator(out["fake_lat"])
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module", params=["official_small64", "official_hpf256"])
def converted(request):
    from conftest import fixture_dir

    path = fixture_dir(request.param)
    nets = stargan_tf.convert_official_checkpoint(str(path / "nets.ckpt"))
    return request.param, nets, dict(np.load(path / "fixture.npz"))


def test_config_inferred_from_the_file(converted):
    import json

    name, nets, d = converted
    official = json.loads(str(d["config_json"]))
    for field in ("img_size", "style_dim", "latent_dim", "num_domains", "max_conv_dim", "w_hpf"):
        assert getattr(nets.config, field) == official[field], field
    assert nets.config.dim_in is None  # the official 2**14 // img_size


def test_outputs_match_the_official_code(converted):
    name, nets, d = converted
    ours = official_outputs(nets, d)
    errors = {k: float(np.abs(ours[k] - d[k]).max()) for k in OUTPUTS}
    assert all(ours[k].shape == d[k].shape for k in OUTPUTS)
    assert max(errors.values()) <= TOLERANCE, errors


def test_outputs_match_inside_tf_function(converted):
    # Training and export run the networks as graphs; they must compute the same numbers.
    name, nets, d = converted
    masks = (d["masks_0"], d["masks_1"]) if "masks_0" in d else None

    @tf.function
    def translate(x, z, y):
        return nets.generator(x, nets.mapping_network(z, y), masks=masks)

    fake = translate(d["x"], d["z_trg"], d["y_trg"]).numpy()
    assert np.abs(fake - d["fake_lat"]).max() <= TOLERANCE


def test_official_variable_map_covers_the_official_parameters(converted):
    from conftest import fixture_dir

    import torch

    name, nets, d = converted
    mapping = stargan_tf.official_variable_map(nets)
    state = torch.load(fixture_dir(name) / "nets.ckpt", map_location="cpu", weights_only=True)
    official = {f"{net}/{key}": tuple(t.shape) for net, sd in state.items() for key, t in sd.items()
                if key != "hpf.filter"}  # a constant buffer, not a parameter
    assert set(mapping) == set(official)
    # Every parameter the official code takes gradients of is reachable by its name.
    for branch in ("d_lat", "d_ref", "g_lat", "g_ref"):
        assert set(map(str, d[f"gradnorm_{branch}_keys"])) <= set(mapping), branch
    # The variables hold the official values, transposed to Keras layouts.
    w = state["generator"]["from_rgb.weight"].numpy()  # [O, I, kh, kw]
    np.testing.assert_array_equal(mapping["generator/from_rgb.weight"].numpy(),
                                  w.transpose(2, 3, 1, 0))
    w = state["mapping_network"]["shared.0.weight"].numpy()  # [out, in]
    np.testing.assert_array_equal(mapping["mapping_network/shared.0.weight"].numpy(), w.T)
