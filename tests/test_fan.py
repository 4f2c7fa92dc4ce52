"""The FAN face-landmark network and its masks against the official PyTorch code (`official_fan`).

`wing_random.ckpt` (random weights in the format of the official `wing.ckpt`) is converted; the raw
heatmaps of `x256` and the two masks of `get_heatmap` on `x256` and `x128` match the official
values within 1e-4, eagerly and inside a tf.function; then the converter's errors.
"""

import numpy as np
import pytest
import tensorflow as tf
import torch

import stargan_tf
from stargan_tf import face_masks
from stargan_tf.official_checkpoint import ConversionError

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fan_dir():
    from conftest import fixture_dir

    return fixture_dir("official_fan")


@pytest.fixture(scope="module")
def fan(fan_dir):
    return stargan_tf.convert_official_fan(str(fan_dir / "wing_random.ckpt"))


@pytest.fixture(scope="module")
def fixture(fan_dir):
    return dict(np.load(fan_dir / "fan_fixture.npz"))


def test_raw_heatmaps_match_the_official_code(fan, fixture):
    raw = fan(fixture["x256"] * 0.5 + 0.5).numpy()
    assert raw.shape == fixture["heatmaps_raw256"].shape == (2, 64, 64, 99)
    assert np.abs(raw - fixture["heatmaps_raw256"]).max() <= TOLERANCE


def test_masks_match_the_official_code(fan, fixture):
    # x128 is resized to 256 inside, as the official get_heatmap does; the graph (training,
    # export) computes the same masks as eager mode.
    graph_heatmap = tf.function(fan.get_heatmap)
    for size, get_heatmap in (("256", fan.get_heatmap), ("128", graph_heatmap)):
        masks = get_heatmap(tf.constant(fixture[f"x{size}"]))
        for i in (0, 1):
            official = fixture[f"masks{size}_{i}"]
            assert masks[i].shape == official.shape == (2, 256, 256, 1)
            assert masks[i].dtype == tf.float32
            assert np.abs(masks[i].numpy() - official).max() <= TOLERANCE, (size, i)
    # The fixture's masks are not trivial: part zero, part saturated, part in between.
    m = fixture["masks256_0"]
    assert (m == 0).mean() > 0.3 and (m == 1).mean() > 0.01 and ((m > 0) & (m < 1)).mean() > 0.05


def test_fan_is_frozen_and_all_official_weights_are_loaded(fan, fan_dir):
    assert not fan.trainable_weights
    state = torch.load(fan_dir / "wing_random.ckpt", weights_only=True)["state_dict"]
    official = {k for k in state if not k.endswith("num_batches_tracked")}
    assert {key for key, _, _ in fan.official_weights()} == official
    assert len(fan.weights) == len(official)
    bn = dict((key, var) for key, var, _ in fan.official_weights())["m0.b3_1.bn2.running_var"]
    np.testing.assert_array_equal(bn.numpy(), state["m0.b3_1.bn2.running_var"].numpy())
    # No gradient flows into the masks (the official get_heatmap runs under no_grad).
    x = tf.Variable(tf.zeros([1, 64, 64, 3]))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(fan.get_heatmap(x)[0])
    assert tape.gradient(total, x) is None


def test_landmarks_are_the_peaks_of_the_official_heatmaps(fan, fixture):
    # The align step's landmarks: our FAN's heatmaps give those of the official raw heatmaps.
    from stargan_tf import face_align

    ours = face_align.fan_landmarks(fan, fixture["x256"])
    official = face_align.landmarks_from_heatmaps(fixture["heatmaps_raw256"][..., :98], 256)
    assert ours.shape == (2, 98, 2)
    np.testing.assert_array_equal(ours, official)


def test_align_corners_resize_matches_torch():
    x = np.random.default_rng(0).standard_normal([2, 5, 7, 3]).astype(np.float32)
    ours = face_masks.resize_align_corners(tf.constant(x), 12).numpy()
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(12, 12),
                                          mode="bilinear", align_corners=True)
    np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_converter_errors(small64_dir, tmp_path):
    with pytest.raises(ConversionError, match="not the FAN weights.*download.sh wing"):
        stargan_tf.convert_official_fan(str(small64_dir / "nets.ckpt"))
    with pytest.raises(ConversionError, match="not found"):
        stargan_tf.convert_official_fan(str(tmp_path / "wing.ckpt"))
    partial = tmp_path / "partial.ckpt"
    torch.save({"state_dict": {"l0.weight": torch.zeros(99, 256, 1, 1)}}, partial)
    with pytest.raises(ConversionError, match="missing keys: .*bn1.weight"):
        stargan_tf.convert_official_fan(str(partial))
