"""Interpolation videos between styles (the official `video_ref` and `video_latent`), written as
mp4 when an ffmpeg encoder is available, else as an animated GIF (Pillow)."""

import os
import shutil
import subprocess

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from stargan_tf.inference import mean_style
from stargan_tf.inference.translation import GENERATE_BATCH, generate
from stargan_tf.inference.images import to_uint8

TAIL_FRAMES = 10  # The last frame is held this many more frames, as in the official videos.


def alphas():
    """Interpolation weights of one transition: 0, a sigmoid ramp over [-5, 5) in steps of 0.5,
    then 1 held for 10 frames (31 frames): the change eases in and out, then rests."""
    ramp = 1.0 / (1.0 + np.exp(-np.arange(-5.0, 5.0, 0.5)))
    return np.concatenate([[0.0], ramp, np.ones(10)]).astype(np.float32)


def interpolation_frames(networks, x_src, s_prev, s_next):
    """Frames of the sources translated with a style moving from s_prev to s_next.

    Args:
      networks: the (EMA) networks (with the FAN when w_hpf > 0).
      x_src: [N, S, S, 3] sources in [-1, 1].
      s_prev, s_next: [1, style_dim] styles.

    Returns:
      A list of uint8 [2S, N*S, 3] frames, one per `alphas()`: sources above, translations below.
    """
    n, size = x_src.shape[0], x_src.shape[1]
    src_row = np.concatenate(list(to_uint8(x_src)), axis=1)  # [S, N*S, 3]
    weights = alphas()
    step = max(1, GENERATE_BATCH // n)  # Frames per batch of generated images.
    frames = []
    for i in range(0, len(weights), step):
        a = tf.constant(weights[i : i + step])[:, None]  # [T, 1]
        s_trg = tf.repeat(s_prev + a * (s_next - s_prev), n, axis=0)  # [T*N, style_dim]
        x_real = tf.tile(x_src, [a.shape[0], 1, 1, 1])  # [T*N, S, S, 3], sources in order
        x_fake = generate(networks, x_real, s_trg).reshape([-1, n, size, size, 3])  # [T, N, ...]
        for fakes in x_fake:
            frames.append(np.concatenate([src_row, np.concatenate(list(fakes), axis=1)], axis=0))
    return frames


def sliding_references(x_prev, x_next):
    """Frames of a column where reference x_next slides up into view below x_prev.

    Args:
      x_prev, x_next: [S, S, 3] references in [-1, 1].

    Returns:
      A list of uint8 [2S, S, 3] frames, one per `alphas()`; black where no image is.
    """
    size = x_prev.shape[0]
    stacked = to_uint8(np.concatenate([x_prev, x_next], axis=0))  # [2S, S, 3]
    frames = []
    for alpha in alphas():
        top = int(size * (1.0 - alpha))  # Row where the stack starts: S (only x_prev) up to 0.
        frame = np.zeros_like(stacked)
        frame[top:] = stacked[: 2 * size - top]
        frames.append(frame)
    return frames


def reference_video_frames(networks, x_src, x_ref, y_ref):
    """Frames of the official reference video: for each pair of consecutive references of the
    same domain, the style moves from one to the next; the references slide by on the left.

    Yields uint8 [2S, S + S // 8 + N*S, 3] frames; none when no two consecutive references share
    a domain.
    """
    s_ref = networks.style_encoder(x_ref, y_ref)  # [R, style_dim]
    size = x_src.shape[1]
    gap = np.zeros([2 * size, size // 8, 3], np.uint8)
    frame = None
    for r in range(1, x_ref.shape[0]):
        if int(y_ref[r]) != int(y_ref[r - 1]):
            continue
        slides = sliding_references(x_ref[r - 1], x_ref[r])
        moving = interpolation_frames(networks, x_src, s_ref[r - 1 : r], s_ref[r : r + 1])
        for left, right in zip(slides, moving):
            frame = np.concatenate([left, gap, right], axis=1)
            yield frame
    for _ in range(TAIL_FRAMES if frame is not None else 0):
        yield frame


def latent_video_frames(networks, x_src, z_trg, psi=1.0, s_avg=None):
    """Frames of the official latent video: in each domain in turn, the style moves through the
    latent codes z_trg[0], z_trg[1], ... mapped into that domain (truncated toward the domain's
    mean style s_avg [num_domains, style_dim] by psi when psi != 1, as the official video).

    Yields uint8 [2S, N*S, 3] frames; none when there are fewer than 2 codes.
    """
    n_codes = z_trg.shape[0]
    frame = None
    for d in range(networks.config.num_domains):
        y_trg = tf.fill([n_codes], d)  # [K]
        s_trg = networks.mapping_network(z_trg, y_trg)  # [K, style_dim]
        if psi != 1.0:
            s_trg = mean_style.truncate(s_trg, tf.gather(s_avg, y_trg), psi)
        for k in range(1, n_codes):
            for frame in interpolation_frames(networks, x_src, s_trg[k - 1 : k], s_trg[k : k + 1]):
                yield frame
    for _ in range(TAIL_FRAMES if frame is not None else 0):
        yield frame


def ffmpeg_executable():
    """Path of an ffmpeg binary (on PATH, or from the imageio-ffmpeg package), or None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # Optional: ships an ffmpeg binary.

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def _write_mp4(path, frames, fps, ffmpeg):
    process = None
    count = 0
    for frame in frames:
        if process is None:
            height, width = frame.shape[:2]
            command = [
                ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
                # H.264 in yuv420p (what players accept) needs even sides.
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                path,
            ]  # fmt: skip
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdin.write(np.ascontiguousarray(frame).tobytes())
        count += 1
    if process is None:
        return 0
    _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {err.decode(errors='replace')[-500:]}")
    return count


def _write_gif(path, frames, fps):
    # Paletted as they come: a GIF encoder holds every frame, and 1 byte a pixel is 3x less.
    images = [Image.fromarray(frame).quantize(256) for frame in frames]
    # GIF frame times are whole centiseconds: 15 fps becomes 70 ms a frame (14.3 fps).
    duration_ms = 10 * max(1, round(100 / fps))
    if images:
        images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return len(images)


def write_video(path_stem, frames, fps=15):
    """Writes frames as `<path_stem>.mp4` (ffmpeg available) or `<path_stem>.gif` (Pillow).

    Args:
      path_stem: output path without extension.
      frames: iterable of uint8 [H, W, 3] frames, all the same size.
      fps: frames per second (the official videos play at 15: 30 fps slowed down twice).

    Returns:
      (path, number of frames); (None, 0) when there were no frames (nothing is written).
    """
    ffmpeg = ffmpeg_executable()
    path = path_stem + (".mp4" if ffmpeg else ".gif")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    count = _write_mp4(path, frames, fps, ffmpeg) if ffmpeg else _write_gif(path, frames, fps)
    if count:
        logging.info(
            "Wrote %s (%d frames, %s).",
            path,
            count,
            f"mp4 with {ffmpeg}" if ffmpeg else "GIF with Pillow: no ffmpeg found",
        )
    return (path, count) if count else (None, 0)
