"""Face alignment as the official `align` step does it: rotate, scale and crop a portrait so that
its 98 landmarks fall on the CelebA-HQ mean landmarks (`celeba_lm_mean.npz`).

The similarity transform is the official one: translate the landmarks' mean to the origin, rotate
the face's x-axis (from the eyes and the mouth corners) onto the reference's, scale by the mean
ratio of eye-centre and mouth-corner distances to the landmarks' mean, translate onto the reference
mean. Before warping, the image is mirror-padded by half its size on each side and the padding
faded into a blurred copy, so that rotated corners are filled with plausible texture.

Differences from the official code, which uses OpenCV and scikit-image: the warp resamples with
PIL's bicubic filter (OpenCV's Lanczos-4 has no PIL counterpart for transforms), and the resizes of
the blurred padding are TensorFlow's bilinear ones (the same half-pixel sampling as OpenCV's).
"""

import numpy as np
import tensorflow as tf
from PIL import Image
from scipy import ndimage

from stargan_tf.errors import UserError

NUM_LANDMARKS = 98
EYE_LEFT = list(range(60, 68)) + [96]  # contour of the left eye and its pupil
EYE_RIGHT = list(range(68, 76)) + [97]
MOUTH_LEFT, MOUTH_RIGHT = 76, 82
SCALE_POINTS = [96, 97, 76, 82]  # pupils and mouth corners


def read_mean_landmarks(path):
    """The CelebA-HQ mean landmarks [98, 2] (x, y at 256 px) of the official celeba_lm_mean.npz."""
    try:
        with np.load(path) as f:
            mean = np.asarray(f["mean"], np.float64)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"--lm_path={path} is not the official celeba_lm_mean.npz ({e}); it comes "
            "with the FAN weights: bash download.sh wing in the official repository."
        ) from None
    if mean.shape != (NUM_LANDMARKS, 2):
        raise UserError(f"--lm_path={path}: 'mean' has shape {mean.shape}, expected (98, 2).")
    return mean


def face_x_axis(landmarks):
    """The unit x-axis of a face: the eye-to-eye direction blended with the perpendicular of the
    mouth-to-eyes direction (the official `landmarks2xaxis`, after PGGAN's CelebA-HQ)."""
    eye_left = landmarks[EYE_LEFT].mean(axis=0)
    eye_right = landmarks[EYE_RIGHT].mean(axis=0)
    eye_to_eye = eye_right - eye_left
    mouth = (landmarks[MOUTH_LEFT] + landmarks[MOUTH_RIGHT]) / 2
    mouth_to_eyes = (eye_left + eye_right) / 2 - mouth
    axis = eye_to_eye - np.array([mouth_to_eyes[1], -mouth_to_eyes[0]])  # minus it turned by 90°
    return axis / np.linalg.norm(axis)


def _homogeneous(linear=None, translation=(0.0, 0.0)):
    m = np.eye(3)
    m[:2, :2] = np.eye(2) if linear is None else linear
    m[:2, 2] = translation
    return m


def similarity_to_reference(landmarks, reference):
    """The 3x3 matrix taking image coordinates (x, y, 1) onto the reference landmarks' frame.

    Args:
      landmarks: [98, 2] landmarks (x, y) of the face in the image.
      reference: [98, 2] mean landmarks at the output size.
    """
    x_src, x_ref = face_x_axis(landmarks), face_x_axis(reference)
    cos = float(np.clip(np.dot(x_src, x_ref), -1.0, 1.0))
    sin = np.sqrt(1.0 - cos * cos) * np.sign(x_src[0] * x_ref[1] - x_src[1] * x_ref[0])
    rotation = np.array([[cos, -sin], [sin, cos]])
    src_mean, ref_mean = landmarks.mean(axis=0), reference.mean(axis=0)
    ratios = np.linalg.norm(reference - ref_mean, axis=1) / np.linalg.norm(
        landmarks - src_mean, axis=1
    )
    scale = ratios[SCALE_POINTS].mean()
    return (
        _homogeneous(translation=ref_mean)
        @ _homogeneous(scale * np.eye(2))
        @ _homogeneous(rotation)
        @ _homogeneous(translation=-src_mean)
    )


def _resize(image, height, width):
    # Half-pixel bilinear without antialiasing, as OpenCV's INTER_LINEAR.
    return tf.image.resize(image, [height, width], method="bilinear").numpy()


def pad_mirror(image, landmarks):
    """Mirror-pads an image [H, W, 3] (uint8) by H/2 and W/2 on each side, fading the padding
    into a blurred copy of the padded image.

    Returns:
      (float image [2H, 2W, 3], the landmarks shifted by the padding).
    """
    height, width = image.shape[:2]
    pad = ((height // 2, height // 2), (width // 2, width // 2), (0, 0))
    padded = np.pad(image, pad, "reflect")
    small = np.round(_resize(padded, height, width)) / 255.0
    small = ndimage.gaussian_filter(small, sigma=(height // 100, height // 100, 0), mode="nearest")
    blurred = _resize(small, 2 * height, 2 * width) * 255.0
    pad_h, pad_w = padded.shape[:2]
    # Weights rise from 0 at the border to 1 a quarter of the padded height inside.
    ramp_y = np.clip(np.arange(pad_h) / (pad_h // 4), 0, 1)
    ramp_x = np.clip(np.arange(pad_w) / (pad_h // 4), 0, 1)
    ramp_y, ramp_x = np.minimum(ramp_y, ramp_y[::-1]), np.minimum(ramp_x, ramp_x[::-1])
    weight = np.minimum(ramp_y[:, None], ramp_x[None, :])[..., None] ** 4  # [2H, 2W, 1]
    out = padded * weight + blurred * (1 - weight)
    return out, landmarks + np.array([pad_w // 4, pad_h // 4])


def warp(image, matrix, output_size):
    """Warps a float image [H, W, 3] by the 3x3 `matrix` (output = image moved by matrix) and
    crops [output_size, output_size]: uint8."""
    height, width = image.shape[:2]
    # The matrix works on pixel centres at integer coordinates; PIL puts them at +0.5.
    centre = _homogeneous(translation=(0.5, 0.5))
    inverse = np.linalg.inv(centre @ matrix @ np.linalg.inv(centre))  # output -> input
    canvas = (max(width, output_size), max(height, output_size))
    channels = [
        Image.fromarray(np.asarray(image[..., c], np.float32), mode="F").transform(
            canvas, Image.AFFINE, tuple(inverse[:2].ravel()), Image.BICUBIC
        )
        for c in range(3)
    ]
    out = np.stack([np.asarray(c) for c in channels], axis=-1)[:output_size, :output_size]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def align_face(image, landmarks, mean_landmarks, output_size=256):
    """Aligns one face like CelebA-HQ.

    Args:
      image: uint8 [S, S, 3], the portrait resized to output_size (as the official step does).
      landmarks: [98, 2] its landmarks (x, y) in pixels.
      mean_landmarks: [98, 2] the CelebA-HQ mean landmarks at 256 px (`read_mean_landmarks`).
      output_size: the output height and width (a multiple of 256 keeps the official scaling).

    Returns:
      (uint8 [output_size, output_size, 3], the 3x3 matrix taking `image` coordinates to the
      output's).
    """
    reference = np.asarray(mean_landmarks, np.float64) * (output_size // 256)
    padded, shifted = pad_mirror(image, np.asarray(landmarks, np.float64))
    matrix = similarity_to_reference(shifted, reference)
    pad = _homogeneous(translation=(image.shape[1] // 2, image.shape[0] // 2))
    return warp(padded, matrix, output_size), matrix @ pad


def landmarks_from_heatmaps(heatmaps, image_size):
    """Landmarks [N, 98, 2] (x, y) in pixels of an image_size image from raw FAN heatmaps
    [N, h, w, 98]: the peak of each map, nudged a quarter pixel toward its higher neighbour (the
    official `get_preds_fromhm`), scaled by image_size // w."""
    heatmaps = np.asarray(heatmaps, np.float32)
    n, h, w, k = heatmaps.shape
    flat = heatmaps.transpose(0, 3, 1, 2).reshape(n, k, h * w)  # [N, 98, h*w]
    peak = flat.argmax(axis=-1)  # [N, 98]
    px, py = peak % w, peak // w
    preds = np.stack([px, py], axis=-1).astype(np.float32)  # 0-based (x, y)
    for i in range(n):
        for j in range(k):
            x, y = px[i, j], py[i, j]
            if 0 < x < w - 1 and 0 < y < h - 1:
                hm = heatmaps[i, :, :, j]
                step = np.sign([hm[y, x + 1] - hm[y, x - 1], hm[y + 1, x] - hm[y - 1, x]])
                preds[i, j] += 0.25 * step
    # The official code counts from 1, then subtracts 0.5.
    return (preds + 0.5) * (image_size // w)


def fan_landmarks(fan, x):
    """Landmarks [N, 98, 2] (x, y in pixels) of images x [N, S, S, 3] in [-1, 1] with a FAN: the
    official `get_landmark` (heatmaps of the image resized to 256, without the mask processing)."""
    size = x.shape[1]
    x = tf.convert_to_tensor(x, tf.float32)
    if size != 256:
        x = tf.image.resize(x, [256, 256], method="bilinear")
    heatmaps = fan(x * 0.5 + 0.5)[..., :NUM_LANDMARKS].numpy()
    return landmarks_from_heatmaps(heatmaps, size)
