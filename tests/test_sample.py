"""`python -m stargan_tf.sample` on a 3-domain model: the reference- and latent-guided grids, the
interpolation videos and the translated images, opened and measured."""

import os

import numpy as np
import pytest
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_module
from inference_helpers import DOMAINS, make_model_dir, write_domain_folder
from stargan_tf.inference import images, video

S = 32  # the model's img_size
GAP = 2  # pixels between the cells of a grid
N_SRC, N_REF, N_STYLES, SEED = 4, 6, 2, 11
FRAMES = len(video.alphas())  # per transition


def gif_frames(path):
    """(size, frames shown): Pillow merges repeated frames into one with a longer duration."""
    clip = Image.open(path)
    total_ms = 0
    for i in range(clip.n_frames):
        clip.seek(i)
        total_ms += clip.info["duration"]
    return clip.size, total_ms / (10 * round(100 / 15))  # whole centiseconds a frame


def grid_size(rows, cols):
    """(width, height) of a tiled grid of S px cells."""
    return cols * (S + GAP) - GAP, rows * (S + GAP) - GAP


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    model_dir, networks = make_model_dir(tmp / "model")
    rng = np.random.default_rng(1)
    src = write_domain_folder(str(tmp / "src"), 2, rng)  # 6 sources: only the first 4 are used
    write_domain_folder(str(tmp / "ref"), 2, rng)  # 2 references per domain
    result = run_module(
        "stargan_tf.sample",
        "--checkpoint",
        model_dir,
        "--src_dir",
        tmp / "src",
        "--ref_dir",
        tmp / "ref",
        "--out_dir",
        tmp / "out",
        "--max_sources",
        N_SRC,
        "--num_styles",
        N_STYLES,
        "--seed",
        SEED,
    )
    return tmp / "out", networks, src, result


def test_sample_writes_the_official_grids(sampled):
    out, networks, src, (status, stdout, stderr) = sampled
    assert status == 0, stderr[-3000:]
    # Reference-guided: a blank cell and the sources, then one row per reference.
    reference = Image.open(out / "reference.jpg")
    assert reference.size == grid_size(1 + N_REF, 1 + N_SRC)
    # Latent-guided: the sources, then one row per (domain, latent code).
    latent = Image.open(out / "latent.jpg")
    assert latent.size == grid_size(1 + len(DOMAINS) * N_STYLES, N_SRC)
    # The 2nd source in "wild" with the 2nd code is the seed's translation: of all the cells,
    # that one is the closest (JPEG keeps it within a few levels).
    x_fake = stargan_tf.translate(networks, images.read_image(src[1], S), "wild", seed=SEED + 1)
    expected = np.clip(np.round((x_fake + 1) * 127.5), 0, 255)
    cells = np.asarray(latent).astype(float)
    errors = {
        (r, c): np.abs(
            cells[r * (S + GAP) : r * (S + GAP) + S, c * (S + GAP) : c * (S + GAP) + S] - expected
        ).mean()
        for r in range(1 + len(DOMAINS) * N_STYLES)
        for c in range(N_SRC)
    }
    assert min(errors, key=errors.get) == (1 + 2 * N_STYLES + 1, 1)
    assert errors[(1 + 2 * N_STYLES + 1, 1)] < 8


def test_sample_writes_interpolation_videos(sampled):
    out, _, _, (status, _, stderr) = sampled
    assert status == 0, stderr[-3000:]
    ext = ".mp4" if video.ffmpeg_executable() else ".gif"
    assert ("GIF with Pillow: no ffmpeg found" in stderr) == (ext == ".gif")
    if ext == ".mp4":
        assert os.path.getsize(out / "video_ref.mp4") > 0
        assert os.path.getsize(out / "video_latent.mp4") > 0
        return
    # Reference video: one transition per consecutive pair of references of a domain (1 each).
    size, frames = gif_frames(out / "video_ref.gif")
    assert size == (S + S // 8 + N_SRC * S, 2 * S)
    assert frames == len(DOMAINS) * FRAMES + video.TAIL_FRAMES
    # Latent video: one transition per consecutive pair of codes, in every domain.
    size, frames = gif_frames(out / "video_latent.gif")
    assert size == (N_SRC * S, 2 * S)
    assert frames == len(DOMAINS) * (N_STYLES - 1) * FRAMES + video.TAIL_FRAMES


def test_sample_names_outputs_after_their_inputs(sampled):
    out, _, _, (status, _, stderr) = sampled
    assert status == 0, stderr[-3000:]
    sources = ["cat_img0", "cat_img1", "dog_img0", "dog_img1"]
    references = [f"{d}_img{i}" for d in DOMAINS for i in range(2)]
    assert sorted(os.listdir(out / "reference")) == sorted(
        f"{s}__{r}.jpg" for s in sources for r in references
    )
    assert sorted(os.listdir(out / "latent")) == sorted(
        f"{s}__{d}_seed{SEED + k}.jpg" for s in sources for d in DOMAINS for k in range(N_STYLES)
    )
    assert Image.open(out / "reference" / "dog_img1__wild_img0.jpg").size == (S, S)


def test_sample_bad_inputs_are_usage_errors(tmp_path):
    assert_usage_error(
        run_module(
            "stargan_tf.sample",
            "--checkpoint",
            tmp_path / "nope",
            "--src_dir",
            tmp_path,
            "--out_dir",
            tmp_path / "out",
        ),
        "--checkpoint",
        "not a directory",
    )
