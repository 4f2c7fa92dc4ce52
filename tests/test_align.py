"""`python -m stargan_tf.align`: a face warped by a known similarity transform, with its landmarks
given (no pretrained FAN exists here), is brought back onto the mean landmarks within a pixel."""

import numpy as np
from PIL import Image
from scipy import ndimage

from cli_helpers import assert_usage_error, run_module
from stargan_tf.data import face_align

SIZE = 256
DOTS = np.array([[80.0, 90.0], [170.0, 100.0], [128.0, 190.0], [60.0, 200.0]])  # (x, y)


def mean_landmarks(rng):
    """Plausible CelebA-HQ-like landmarks [98, 2] at 256 px: eyes, pupils and mouth corners where
    a face has them, the other points spread over the face."""
    lm = rng.uniform(70, 190, [98, 2])
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ring = 9 * np.stack([np.cos(angles), 0.5 * np.sin(angles)], axis=-1)
    lm[60:68], lm[96] = (95, 115) + ring, (95, 115)
    lm[68:76], lm[97] = (161, 113) + ring, (161, 113)
    lm[76], lm[82] = (102, 186), (154, 187)
    return lm


def reference_face(rng):
    """A smooth textured uint8 image with bright dots at DOTS."""
    coarse = rng.uniform(30, 90, [8, 8, 3])
    image = ndimage.zoom(coarse, (SIZE / 8, SIZE / 8, 1), order=1)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for x, y in DOTS:
        image += 160 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))[..., None]
    return np.clip(image, 0, 255)


def similarity(angle_deg, scale, shift):
    a = np.deg2rad(angle_deg)
    m = np.eye(3)
    m[:2, :2] = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m[:2, 2] = shift
    return m


def apply(m, points):
    return points @ m[:2, :2].T + m[:2, 2]


def warp_scipy(image, m):
    """image moved by m (x, y coordinates, pixel centres at integers), bilinear: out(p) =
    image(m^-1 p). Independent of the code under test."""
    inv = np.linalg.inv(m)
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])  # (x, y) <-> (row, col)
    inv_rc = swap @ inv @ swap
    return np.stack(
        [
            ndimage.affine_transform(
                image[..., c], inv_rc[:2, :2], inv_rc[:2, 2], order=1, mode="nearest"
            )
            for c in range(3)
        ],
        -1,
    )


def dot_centres(image, near, radius=8):
    """Intensity-weighted centres (x, y) of the bright dots near the given points."""
    gray = image.astype(np.float64).mean(axis=-1)
    out = []
    for x, y in np.round(near).astype(int):
        win = gray[y - radius : y + radius + 1, x - radius : x + radius + 1]
        weight = np.maximum(win - np.percentile(win, 60), 0)
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        out.append([x + (weight * xx).sum() / weight.sum(), y + (weight * yy).sum() / weight.sum()])
    return np.array(out)


def test_align_undoes_a_known_similarity_transform(tmp_path):
    rng = np.random.default_rng(0)
    mean = mean_landmarks(rng)
    # The portrait: the aligned face rotated by 14 degrees, shrunk to 0.8 and moved.
    face_to_photo = similarity(14.0, 0.8, (40.0, 10.0))
    photo = np.round(warp_scipy(reference_face(rng), face_to_photo)).astype(np.uint8)
    landmarks = apply(face_to_photo, mean)
    moved = np.linalg.norm(apply(face_to_photo, DOTS) - DOTS, axis=1)
    assert moved.min() > 5  # the dots moved: a real test
    (tmp_path / "in" / "people").mkdir(parents=True)
    Image.fromarray(photo).save(tmp_path / "in" / "people" / "face.jpg", quality=98)
    np.savez(tmp_path / "celeba_lm_mean.npz", mean=mean)
    np.savez(tmp_path / "landmarks.npz", **{"people/face.jpg": landmarks})

    # The transform is the inverse of the one applied.
    _, matrix = face_align.align_face(photo, landmarks, mean, SIZE)
    np.testing.assert_allclose(matrix, np.linalg.inv(face_to_photo), atol=1e-6)

    status, stdout, stderr = run_module(
        "stargan_tf.align",
        "--input_dir",
        tmp_path / "in",
        "--output_dir",
        tmp_path / "out",
        "--lm_path",
        tmp_path / "celeba_lm_mean.npz",
        "--landmarks",
        tmp_path / "landmarks.npz",
    )
    assert status == 0, stderr[-3000:]
    aligned = np.asarray(Image.open(tmp_path / "out" / "people" / "face.png"))
    assert aligned.shape == (SIZE, SIZE, 3)
    errors = np.linalg.norm(dot_centres(aligned, DOTS) - DOTS, axis=1)
    assert errors.max() < 1.0, errors
    # The mirror padding fills what lay outside the photo: no black corners.
    assert aligned[:4, :4].mean() > 20 and aligned[-4:, -4:].mean() > 20


def test_landmarks_from_heatmaps_peak_and_quarter_pixel_nudge():
    hm = np.zeros([1, 64, 64, 98], np.float32)
    hm[0, 10, 20, :] = 1.0  # peak at x=20, y=10
    hm[0, 10, 21, 0] = 0.5  # landmark 0: right neighbour higher -> +0.25 in x
    hm[0, 9, 20, 1] = 0.5  # landmark 1: upper neighbour higher -> -0.25 in y
    lm = face_align.landmarks_from_heatmaps(hm, 256)  # 4 px per heatmap pixel
    np.testing.assert_allclose(lm[0, 0], [(20.25 + 0.5) * 4, (10 + 0.5) * 4])
    np.testing.assert_allclose(lm[0, 1], [(20 + 0.5) * 4, (9.75 + 0.5) * 4])
    np.testing.assert_allclose(lm[0, 2], [(20 + 0.5) * 4, (10 + 0.5) * 4])


def test_usage_errors(tmp_path):
    (tmp_path / "in").mkdir()
    folders = ["--input_dir", tmp_path / "in", "--output_dir", tmp_path / "out"]
    assert_usage_error(
        run_module("stargan_tf.align", *folders, "--lm_path", tmp_path / "no.npz"),
        "--lm_path",
        "download.sh wing",
    )
    np.savez(tmp_path / "lm.npz", mean=np.zeros([98, 2]))
    assert_usage_error(
        run_module(
            "stargan_tf.align",
            *folders,
            "--lm_path",
            tmp_path / "lm.npz",
            "--wing_path",
            tmp_path / "wing.ckpt",
        ),
        "--wing_path",
        "--landmarks",
    )
