"""The FAN face-landmark network and its masks against the official PyTorch code (`official_fan`).

`wing_random.ckpt` (random weights in the format of the official `wing.ckpt`) is converted; the raw
heatmaps of `x256` and the two masks of `get_heatmap` on `x256` and `x128` match the official
values within measured tolerances, eagerly and inside a tf.function, and a deliberate mistake
(Keras's BatchNorm epsilon) fails them; then the converter's errors.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import stargan_tf
from stargan_tf.networks import face_masks
from stargan_tf.official.checkpoint import ConversionError

# Absolute tolerances, FACTOR x the worst max |ours - official| seen. Measured with a throwaway
# script, each setting a separate process: TF_NUM_INTRAOP_THREADS=1 and 2, op determinism off and
# on, oneDNN off or limited to AVX2 or SSE4.1 kernels (ONEDNN_MAX_CPU_ISA), repeats; 11 processes.
# Our own heatmaps moved between them by up to 6.0e-7, the masks by 1.0e-5 (kernels; 7.6e-6
# threads 1 vs 2); op determinism and repeats changed no bit.
RAW_WORST = 5.7e-7  # raw heatmaps of x256
MASK_WORST = 7.8e-6  # masks of x256 and x128, eager and graph
RESIZE_WORST = 7.2e-7  # our align-corners resize vs torch's, both float32 (ulps of |x| < 4)
FACTOR = 3
RAW_TOLERANCE = FACTOR * RAW_WORST
MASK_TOLERANCE = FACTOR * MASK_WORST
RESIZE_TOLERANCE = FACTOR * RESIZE_WORST
# The landmarks (argmax of each heatmap, nudged toward the higher neighbour) are compared exactly:
# in the official heatmaps the peak leads the runner-up by >= 2.5e-5 and the neighbours differ
# by >= 6.7e-5, both far above FACTOR x RAW_WORST, so noise cannot flip them.


@pytest.fixture(scope="module")
def fan_dir():
    from support import fixture_dir

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
    assert np.abs(raw - fixture["heatmaps_raw256"]).max() <= RAW_TOLERANCE


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
            assert np.abs(masks[i].numpy() - official).max() <= MASK_TOLERANCE, (size, i)
    # The fixture's masks are not trivial: part zero, part saturated, part in between.
    m = fixture["masks256_0"]
    assert (m == 0).mean() > 0.3 and (m == 1).mean() > 0.01 and ((m > 0) & (m < 1)).mean() > 0.05


def test_keras_batch_norm_epsilon_breaks_the_comparisons(fan, fixture):
    # Keras's default BatchNorm epsilon 1e-3 instead of PyTorch's 1e-5 (a porting mistake) must
    # put the raw heatmaps and the masks outside their tolerances.
    norms = [
        layer
        for layer in fan._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 55 and all(norm.epsilon == 1e-5 for norm in norms)
    try:
        for norm in norms:
            norm.epsilon = 1e-3
        raw = fan(fixture["x256"] * 0.5 + 0.5).numpy()
        masks = fan.get_heatmap(tf.constant(fixture["x256"]))
    finally:
        for norm in norms:
            norm.epsilon = 1e-5
    assert np.abs(raw - fixture["heatmaps_raw256"]).max() > RAW_TOLERANCE
    assert (
        max(np.abs(masks[i].numpy() - fixture[f"masks256_{i}"]).max() for i in (0, 1))
        > MASK_TOLERANCE
    )


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
    from stargan_tf.data import face_align

    ours = face_align.fan_landmarks(fan, fixture["x256"])
    official = face_align.landmarks_from_heatmaps(fixture["heatmaps_raw256"][..., :98], 256)
    assert ours.shape == (2, 98, 2)
    np.testing.assert_array_equal(ours, official)


def test_align_corners_resize_matches_torch():
    x = np.random.default_rng(0).standard_normal([2, 5, 7, 3]).astype(np.float32)
    ours = face_masks.resize_align_corners(tf.constant(x), 12).numpy()
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=(12, 12), mode="bilinear", align_corners=True
    )
    ref = ref.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=RESIZE_TOLERANCE)
    # Half-pixel centres (tf.image.resize's bilinear) instead of align_corners: far outside.
    half = tf.image.resize(tf.constant(x), [12, 12], method="bilinear").numpy()
    assert np.abs(half - ref).max() > RESIZE_TOLERANCE


def test_converter_errors(small64_dir, tmp_path):
    with pytest.raises(ConversionError, match="not the FAN weights.*download.sh wing"):
        stargan_tf.convert_official_fan(str(small64_dir / "nets.ckpt"))
    with pytest.raises(ConversionError, match="not found"):
        stargan_tf.convert_official_fan(str(tmp_path / "wing.ckpt"))
    partial = tmp_path / "partial.ckpt"
    torch.save({"state_dict": {"l0.weight": torch.zeros(99, 256, 1, 1)}}, partial)
    with pytest.raises(ConversionError, match="missing keys: .*bn1.weight"):
        stargan_tf.convert_official_fan(str(partial))
