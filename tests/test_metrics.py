"""FID and LPIPS parity with the PyTorch reference implementations, on random-weight fixtures.

`../shared/fixtures/eval_reference` holds random weights in the published file formats and what
the official StarGAN v2 metrics, pytorch-fid and scipy computed from them (see its README).

Tolerances are FACTOR x the worst deviation from the reference values seen, measured with a
throwaway script, each setting a separate process. TensorFlow parts: TF_NUM_INTRAOP_THREADS=1 and
2, op determinism off and on, oneDNN off or limited to AVX2 or SSE4.1 kernels (ONEDNN_MAX_CPU_ISA),
repeats; 11 processes, between which our Inception outputs moved by up to 1.7e-5 (threads 1 vs 2)
and 3.6e-5 (kernels) relative, our LPIPS values by 6e-8; op determinism and repeats changed no
bit. Fréchet distances (float64, numpy/scipy): OPENBLAS_NUM_THREADS=1 and 2 (no bit changed) and
OPENBLAS_CORETYPE=Haswell, SkylakeX, Sandybridge, Prescott (other CPUs' BLAS kernels). Deliberate
mistakes (torchvision's transform_input, LPIPS without its input scaling, pytorch-fid's eps retry
taken every time) must fail the comparisons.
"""

import numpy as np
import pytest

from support import fixture_dir
from stargan_tf import metrics
from stargan_tf.errors import UserError
from stargan_tf.metrics import frechet, inception, lpips


@pytest.fixture(scope="module")
def ref():
    path = fixture_dir("eval_reference")
    return path, dict(np.load(path / "eval_fixture.npz"))


FACTOR = 3
# Inception blocks and features, max |ours - reference| / max |reference|: worst 3.9e-5
# (pytorch-fid block3, SSE4.1 kernels).
INCEPTION_RTOL = FACTOR * 3.9e-5
# LPIPS per-layer terms, distances and means, absolute: worst 6.0e-8 (values 0 to ~0.6).
LPIPS_ATOL = FACTOR * 6.0e-8
# AlexNet feature maps, max |ours - reference| / max |reference|: worst 1.7e-6.
ALEXNET_RTOL = FACTOR * 1.7e-6
# Fréchet distances, full-rank cases, absolute: worst 3.0e-12 (identical vs pytorch-fid, Haswell
# kernels; generic 1.0e-12); with the default kernels ours equals the fixture's to the last bit.
FD_ATOL = FACTOR * 3.0e-12
# Rank-deficient cases, relative, against the official, pytorch-fid and eigenvalue values: worst
# 1.3e-8 (near_singular vs the eigenvalue formula, Sandybridge kernels; vs the official 4.6e-9).
FD_SINGULAR_RTOL = FACTOR * 1.3e-8


def _rel_err(got, want):
    return np.abs(np.asarray(got) - want).max() / np.abs(want).max()


@pytest.fixture(scope="module")
def official_inception(ref):
    path, _ = ref
    weights = path / "torchvision_inception_v3_random.pth"
    return inception.InceptionExtractor("official", str(weights))


@pytest.fixture(scope="module")
def fid_inception(ref):
    path, _ = ref
    return inception.InceptionExtractor("fid", str(path / "pt_inception_random.pth"))


def test_official_preprocessing_is_pil_bilinear_on_uint8(ref):
    _, f = ref
    resized = np.stack([inception.pil_resize(image, 299) for image in f["images_u8"]])
    np.testing.assert_array_equal(resized, f["fid_official_resized299_u8"])
    np.testing.assert_array_equal(
        inception.official_input(f["images_u8"]), f["fid_official_input299"]
    )
    # A real resample first (96x80 -> 64x64: PIL's antialiased bilinear downscale).
    down = np.stack([inception.pil_resize(image, 64) for image in f["resize_case_src_u8"]])
    np.testing.assert_array_equal(down, f["resize_case_resized64_u8"])
    up = np.stack([inception.pil_resize(image, 299) for image in down])
    np.testing.assert_array_equal(up, f["resize_case_resized299_u8"])


def test_official_inception_features(ref, official_inception):
    _, f = ref
    # From uint8, through the preprocessing (checked bit-exact above).
    out = official_inception.outputs(inception.official_input(f["images_u8"]))
    for block in ("block1", "block2", "block3"):
        want = f[f"fid_official_{block}_img0"]
        assert _rel_err(out[block][:1], want) <= INCEPTION_RTOL, block
    want = f["fid_official_features"]
    assert out["features"].shape == (6, 2048)
    assert _rel_err(out["features"], want) <= INCEPTION_RTOL
    # The fixture's contrasts are far off: no transform_input, no float resize here.
    assert _rel_err(f["contrast_fid_official_features_if_transform_input"], want) > 1e-1
    assert _rel_err(f["contrast_fid_official_features_float_bilinear"], want) > 1e-2
    down = np.stack([inception.pil_resize(image, 64) for image in f["resize_case_src_u8"]])
    assert (
        _rel_err(official_inception.features(down), f["resize_case_fid_official_features"])
        <= INCEPTION_RTOL
    )


def test_transform_input_breaks_the_inception_comparison(ref, official_inception):
    # Our own network with torchvision's transform_input (ImageNet-normalised -> [-1, 1] inputs),
    # which the official class never applies: outside the tolerance (two images: cheap).
    _, f = ref
    x = inception.official_input(f["images_u8"][:2])
    x = (x * inception.IMAGENET_STD + inception.IMAGENET_MEAN - 0.5) / 0.5
    features = official_inception.outputs(x.astype(np.float32))["features"]
    assert _rel_err(features, f["fid_official_features"][:2]) > INCEPTION_RTOL


def test_fid_inception_features(ref, fid_inception):
    _, f = ref
    np.testing.assert_array_equal(f["images_u8"] / np.float32(255), f["fid_pt_input01"])
    out = fid_inception.outputs(f["fid_pt_input01"])  # Resized to 299 inside, in float.
    for ours, theirs in (("block1", "block0"), ("block2", "block1"), ("block3", "block2")):
        want = f[f"fid_pt_{theirs}_img0"]
        assert _rel_err(out[ours][:1], want) <= INCEPTION_RTOL, ours
    assert _rel_err(out["features"], f["fid_pt_features"]) <= INCEPTION_RTOL
    # features() of the uint8 images is that path.
    np.testing.assert_allclose(
        fid_inception.features(f["images_u8"][:2]),
        out["features"][:2],
        rtol=0,
        atol=1e-4 * np.abs(out["features"]).max(),
    )


def test_inception_refuses_the_other_variants_file(ref):
    path, _ = ref
    # An AlexNet file is no Inception: the error names the first missing key.
    with pytest.raises(UserError, match="lacks Conv2d_1a_3x3.conv.weight"):
        inception.InceptionExtractor("official", str(path / "torchvision_alexnet_random.pth"))
    with pytest.raises(UserError, match="is not a file"):
        inception.InceptionExtractor("fid", str(path / "missing.pth"))


@pytest.fixture(scope="module")
def official_lpips(ref):
    path, _ = ref
    return lpips.LPIPS(
        str(path / "torchvision_alexnet_random.pth"), str(path / "lpips_weights_random.ckpt")
    )


@pytest.mark.parametrize("size", ["64", "256"])
def test_lpips_distances(ref, official_lpips, size):
    _, f = ref
    x, y = f[f"lpips_x{size}"], f[f"lpips_y{size}"]
    per_layer = official_lpips.per_layer(x, y)
    np.testing.assert_allclose(
        per_layer, f[f"lpips_official_pairs{size}_per_layer"], rtol=0, atol=LPIPS_ATOL
    )
    d = official_lpips.distances(x, y)
    np.testing.assert_allclose(d, f[f"lpips_official_pairs{size}"], rtol=0, atol=LPIPS_ATOL)
    assert d[0] == 0.0  # Identical images.
    assert abs(d.mean() - f[f"lpips_official_batch{size}"]) <= LPIPS_ATOL


def test_a_missing_scaling_layer_breaks_the_lpips_comparison(ref, official_lpips):
    # LPIPS's input scaling (x - shift) / scale forgotten, the [-1, 1] images fed to AlexNet as
    # they are (a porting mistake): emulated by feeding shift + scale * x through our LPIPS.
    _, f = ref

    def unscaled(x):
        return (lpips.SHIFT + lpips.SCALE * x).astype(np.float32)

    d = official_lpips.distances(unscaled(f["lpips_x64"]), unscaled(f["lpips_y64"]))
    assert np.abs(d - f["lpips_official_pairs64"]).max() > LPIPS_ATOL


def test_lpips_alexnet_features(ref, official_lpips):
    _, f = ref
    x = (f["lpips_x64"][:1] - lpips.SHIFT) / lpips.SCALE
    for i, fmap in enumerate(official_lpips.alexnet(x)):
        want = f[f"lpips_official_alexnet_relu{i + 1}_x64_0"]
        assert _rel_err(fmap, want) <= ALEXNET_RTOL, i


def test_lpips_grouped_mean(ref, official_lpips):
    _, f = ref
    group = list(f["lpips_group64"])  # 4 outputs of 3 images each
    pairs = [
        np.mean(official_lpips.distances(group[i], group[j]))
        for i in range(4)
        for j in range(i + 1, 4)
    ]
    np.testing.assert_allclose(pairs, f["lpips_official_group64_pairwise"], rtol=0, atol=LPIPS_ATOL)
    value = official_lpips.lpips_given_images(group)
    assert isinstance(value, float)
    assert abs(value - f["lpips_official_group64_value"]) <= LPIPS_ATOL


def test_lpips_reads_the_package_weights_too(ref):
    path, f = ref
    # The lpips package's v0.1 alex file holds the official lpips_weights.ckpt values.
    real = lpips.LPIPS(
        str(path / "torchvision_alexnet_random.pth"), str(path / "lpips_package_alex_lin.pth")
    )
    for size in ("64", "256"):
        d = real.distances(f[f"lpips_x{size}"], f[f"lpips_y{size}"])
        np.testing.assert_allclose(
            d, f[f"lpips_official_realckpt_pairs{size}"], rtol=0, atol=LPIPS_ATOL
        )
        assert abs(d.mean() - f[f"lpips_official_realckpt_batch{size}"]) <= LPIPS_ATOL
    with pytest.raises(UserError, match="lacks lpips_weights.0.main.1.weight"):
        lpips.LPIPS(
            str(path / "torchvision_alexnet_random.pth"),
            str(path / "torchvision_alexnet_random.pth"),
        )


def _case(f, name):
    return [f[f"fd_{name}_{k}"] for k in ("mu1", "sigma1", "mu2", "sigma2")]


def test_frechet_distance_matches_official_and_pytorch_fid(ref):
    _, f = ref
    for name in ("generic", "identical"):
        value = metrics.frechet_distance(*_case(f, name))
        assert isinstance(value, float)
        assert abs(value - f[f"fd_{name}_official"]) <= FD_ATOL, name
        assert abs(value - f[f"fd_{name}_pytorch_fid"]) <= FD_ATOL, name
    for name in ("near_singular", "constant_features"):  # Rank-deficient covariances.
        value = metrics.frechet_distance(*_case(f, name))
        for want in (f[f"fd_{name}_official"], f[f"fd_{name}_pytorch_fid"], f[f"fd_{name}_eig"]):
            assert abs(value - want) <= FD_SINGULAR_RTOL * abs(want), name
    # pytorch-fid's eps retry applied when sqrtm did not fail (eps * I added to both covariances
    # every time): outside the tolerances.
    for name in ("generic", "near_singular"):
        mu1, sigma1, mu2, sigma2 = _case(f, name)
        offset = frechet.EPS * np.eye(len(mu1))
        value = metrics.frechet_distance(mu1, sigma1 + offset, mu2, sigma2 + offset)
        want = f[f"fd_{name}_official"]
        assert abs(value - want) > (FD_ATOL if name == "generic" else FD_SINGULAR_RTOL * want)


def test_frechet_distance_to_few_samples_equals_sqrtm():
    rng = np.random.default_rng(1)
    for n1, n2 in ((400, 10), (12, 30), (5, 5)):
        a = rng.normal(size=[n1, 64]) @ rng.normal(size=[64, 64])
        b = rng.normal(1.0, 1.0, size=[n2, 64]) @ rng.normal(size=[64, 64])
        mu1, sigma1 = metrics.statistics(a)
        want = metrics.frechet_distance(mu1, sigma1, *metrics.statistics(b))
        got = frechet.frechet_distance_to_samples(mu1, sigma1, b)
        assert abs(got - want) <= 1e-6 * abs(want), (n1, n2)
    big = rng.normal(size=[80, 64])  # More samples than dimensions: sqrtm itself.
    assert frechet.frechet_distance_to_samples(mu1, sigma1, big) == metrics.frechet_distance(
        mu1, sigma1, *metrics.statistics(big)
    )


def test_frechet_distance_eps_fallback_and_statistics():
    rng = np.random.default_rng(0)
    # A singular product whose sqrtm is not finite in some scipy releases: the eps retry path.
    sigma = np.zeros([4, 4])
    value = metrics.frechet_distance(np.zeros(4), sigma, np.ones(4), sigma)
    assert abs(value - 4.0) <= 1e-5
    feats = rng.normal(size=[50, 3]).astype(np.float32)
    mu, cov = metrics.statistics(feats)
    assert mu.dtype == cov.dtype == np.float64
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False))
    assert abs(metrics.frechet_distance(mu, cov, mu, cov)) < 1e-10
    with pytest.raises(ValueError, match="Shapes disagree"):
        metrics.frechet_distance(mu, cov, mu[:2], cov)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet.statistics(feats[:1])
