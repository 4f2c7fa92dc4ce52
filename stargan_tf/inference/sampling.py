"""What `python -m stargan_tf.sample` renders: grids, videos and the translated images."""

import dataclasses
import os

import numpy as np
from absl import logging

from stargan_tf.data import folders
from stargan_tf.errors import UserError
from stargan_tf.inference import grids, mean_style, video
from stargan_tf.inference.images import save_image
from stargan_tf.inference.translation import latent_codes


@dataclasses.dataclass
class Images:
    """Images read from a folder of domains.

    Attributes:
      x: float32 [N, S, S, 3] in [-1, 1].
      y: int32 [N]: model domain ids (references) or folder indices (sources).
      names: N names for output files: `<domain>_<path below the domain, without extension>`.
    """

    x: np.ndarray
    y: np.ndarray
    names: list


def _model_ids(root, folder_domains, config):
    """Model domain id of each sub-folder of root: by name, else by sorted position."""
    model_domains = list(config.domain_names)
    if all(d in model_domains for d in folder_domains):
        return [model_domains.index(d) for d in folder_domains]
    if len(folder_domains) == len(model_domains):
        logging.warning(
            "The folders of %s (%s) are not the model's domains (%s): matched in sorted order.",
            root, ",".join(folder_domains), ",".join(model_domains),
        )  # fmt: skip
        return list(range(len(model_domains)))
    raise UserError(
        f"{root} has the domain folders {','.join(folder_domains)}; the model's domains are "
        f"{','.join(model_domains)}: name the reference folders after them."
    )


def read_folder(root, config, max_images, targets=False):
    """The first `max_images` images of `root/<domain>/`, resized to the model's size.

    Args:
      root: a folder of domain folders (official layout).
      config: the model config.
      max_images: how many images to read, in `folders.list_domain_images` order.
      targets: the folders are target domains (references): give y as model domain ids.

    Returns:
      `Images`.
    """
    source = folders.image_folder_source(root)
    ids = _model_ids(root, source.domains, config) if targets else range(len(source.domains))
    xs, ys, names = [], [], []
    for x, y, filename in folders.image_folder_dataset(root, config.img_size, batch_size=32):
        for xi, yi, fi in zip(x.numpy(), y.numpy(), filename.numpy()):
            if len(xs) == max_images:
                break
            rel = os.path.splitext(fi.decode())[0]
            xs.append(xi)
            ys.append(ids[int(yi)])
            names.append(rel.replace(os.sep, "_").replace("/", "_"))
        if len(xs) == max_images:
            break
    return Images(np.stack(xs), np.array(ys, np.int32), names)


def psi_suffix(psi):
    """What the outputs of a ψ add to their names: "" for ψ = 1 (today's names), else "_psi_0.7"."""
    return "" if psi == 1.0 else f"_psi_{psi:g}"


def render_all(
    networks,
    sources,
    references,
    out_dir,
    num_styles=10,
    seed=777,
    videos=True,
    video_sources=8,
    fps=15,
    save_images=True,
    psis=(1.0,),
    model_dir=None,
):
    """Writes the grids, videos and translated images of the sample tool to out_dir.

    Args:
      networks: the (EMA) networks (with the FAN when w_hpf > 0).
      sources: `Images` to translate.
      references: `Images` whose styles to take, or None.
      out_dir: output folder (created).
      num_styles: latent codes per domain; code k is that of seed + k (`latent_codes`).
      seed: seed of the first latent code.
      videos: write the interpolation videos.
      video_sources: number of sources (the first ones) in the videos.
      fps: frames per second of the videos.
      save_images: also write every translated image, named after its inputs.
      psis: the ψ values of the latent-guided outputs (grid, images, video), one set each, named
        with `psi_suffix` (ψ = 1: latent.jpg, latent/, video_latent; ψ = 0.7: latent_psi_0.7.jpg,
        latent_psi_0.7/, video_latent_psi_0.7).
      model_dir: the model directory caching the mean styles (`mean_style.mean_styles`), or None.

    Returns:
      The paths written (grids and videos; not the individual images).
    """
    os.makedirs(out_dir, exist_ok=True)
    config = networks.config
    z_trg = latent_codes(np.arange(seed, seed + num_styles), config.latent_dim)  # [K, latent_dim]
    s_avg = None
    if any(psi != 1.0 for psi in psis):
        s_avg = mean_style.mean_styles(networks, model_dir)  # [num_domains, style_dim]
    written = []
    if references is not None:
        written.append(_reference_outputs(networks, sources, references, out_dir, save_images))
    for psi in psis:
        written.append(
            _latent_outputs(networks, sources, z_trg, psi, s_avg, out_dir, seed, save_images)
        )
    if videos:
        written += _videos(
            networks, sources.x[:video_sources], references, z_trg, psis, s_avg, out_dir, fps
        )
    return written


def _reference_outputs(networks, sources, references, out_dir, save_images):
    """The reference-guided grid (and images); returns the grid's path."""
    x_fake = grids.reference_guided(networks, sources.x, references.x, references.y)
    path = os.path.join(out_dir, "reference.jpg")
    save_image(path, grids.reference_grid(sources.x, references.x, x_fake))
    if save_images:
        for r, ref_name in enumerate(references.names):
            for i, src_name in enumerate(sources.names):
                name = f"{src_name}__{ref_name}.jpg"
                save_image(os.path.join(out_dir, "reference", name), x_fake[r, i])
    return path


def _latent_outputs(networks, sources, z_trg, psi, s_avg, out_dir, seed, save_images):
    """The latent-guided grid (and images) at one ψ; returns the grid's path."""
    suffix = psi_suffix(psi)
    x_fake = grids.latent_guided(networks, sources.x, z_trg, psi, s_avg)
    path = os.path.join(out_dir, f"latent{suffix}.jpg")
    save_image(path, grids.latent_grid(sources.x, x_fake))
    if save_images:
        for d, domain in enumerate(networks.config.domain_names):
            for k in range(len(z_trg)):
                for i, src_name in enumerate(sources.names):
                    name = f"{src_name}__{domain}_seed{seed + k}.jpg"
                    save_image(os.path.join(out_dir, f"latent{suffix}", name), x_fake[d, k, i])
    return path


def _videos(networks, x_video, references, z_trg, psis, s_avg, out_dir, fps):
    """The reference video (when references are given) and a latent video per ψ: their paths."""
    written = []
    if references is not None:
        frames = video.reference_video_frames(networks, x_video, references.x, references.y)
        path, _ = video.write_video(os.path.join(out_dir, "video_ref"), frames, fps)
        if path:
            written.append(path)
        else:
            logging.warning("No reference video: no two consecutive references share a domain.")
    for psi in psis:
        frames = video.latent_video_frames(networks, x_video, z_trg, psi, s_avg)
        path, _ = video.write_video(
            os.path.join(out_dir, f"video_latent{psi_suffix(psi)}"), frames, fps
        )
        if path:
            written.append(path)
        else:
            logging.warning("No latent video: it needs --num_styles of at least 2.")
            break
    return written
