"""The official StarGAN v2 evaluation (`metrics/eval.py`): FID and LPIPS per translation task.

For every ordered pair of domains (source, target), every validation image of the source domain
is translated `num_outs_per_domain` times into the target domain, with as many latent codes
(mode "latent") or references, the target domain's validation images (mode "reference"). The
outputs are quantised to 8-bit images as the official code saves them (and written as PNG when
asked). LPIPS: per batch of sources, the mean over all pairs of its outputs (on the generator's
float outputs, as the official code), averaged over the batches of the task. FID: between the
target domain's training images and the task's outputs. The results, every task and the means,
are named as the official JSON files name them (`FID_latent/cat2dog`, `LPIPS_reference/mean`).

Differences from the official loop, none of which changes what is measured: the 8-bit outputs go
to the Inception network directly instead of through PNG files (PNG is lossless), quantised by
rounding (the official `save_image` adds 0.5 and truncates: the same but for exact ties); latent
codes come from numpy's generator seeded by `seed` instead of torch's global one; the reference
stream
is a series of shuffled passes over the target domain's images (the official code cycles a
shuffled loader that drops each pass's last partial batch).
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from stargan_tf import files
from stargan_tf.data import pipeline
from stargan_tf.errors import UserError
from stargan_tf.inference import images as image_io
from stargan_tf.inference import models, translation
from stargan_tf.inference.progress import ProgressBar
from stargan_tf.metrics import frechet, real_stats
from stargan_tf.metrics.config import EvalConfig
from stargan_tf.metrics.inception import InceptionExtractor
from stargan_tf.metrics.lpips import LPIPS
from stargan_tf.inference.images import to_uint8


class Metrics:
    """The networks evaluation needs, built once: the Inception extractor and LPIPS (and the
    real images' statistics, once computed). `config` is an `EvalConfig`."""

    def __init__(self, config: EvalConfig):
        config.validate()
        self.config = config
        self.extractor = InceptionExtractor(
            config.inception, config.inception_weights, batch_size=config.val_batch_size
        )
        self.lpips = LPIPS(config.alexnet_weights, config.lpips_weights)
        self._real = {}  # (domain, img_size) -> (mu, sigma)

    def real_statistics(self, domain, img_size, source):
        if (domain, img_size) not in self._real:
            self._real[domain, img_size] = real_stats.real_statistics(
                self.config.train_data,
                domain,
                self.extractor,
                img_size,
                self.config.val_batch_size,
                self.config.stats_cache or None,
                source=source,
            )
        return self._real[domain, img_size]


def _check_domains(model_domains, source, what):
    missing = [d for d in model_domains if d not in source.domains]
    if missing:
        raise UserError(
            f"{what}={source.name} has no domain {', '.join(missing)}: the model's domains are "
            f"{', '.join(model_domains)}, its domains {', '.join(source.domains)}."
        )


def _tasks(domains):
    """(source, target) domain names in the official order: by target, then by source."""
    return [(src, trg) for trg in domains for src in domains if src != trg]


def evaluate(networks, metrics, step=0, image_dir=None, progress=True):
    """Runs the official evaluation of `networks` (e.g. the EMA networks).

    Args:
      networks: `Networks` (face models, w_hpf > 0, with their FAN: the generator takes the
        masks of every source, as the official evaluation does).
      metrics: a `Metrics` (its config says what data, weights and modes).
      step: the training step, for messages.
      image_dir: write the outputs there as PNG, `<mode>/<src>2<trg>/NNNN_JJ.png` as the
        official code names them; None = do not write them.
      progress: show a progress bar on stderr.

    Returns:
      An ordered dict {"FID_latent/cat2dog": float, ..., "FID_latent/mean": ...,
      "LPIPS_latent/cat2dog": ..., "LPIPS_latent/mean": ..., then the reference mode}.
    """
    config, model = metrics.config, networks.config
    models.check_supported(networks)
    domains = list(model.domain_names)
    val = real_stats.open_data(config.val_data)
    train = real_stats.open_data(config.train_data)
    _check_domains(domains, val, "--val_data")
    _check_domains(domains, train, "--train_data")
    tasks = _tasks(domains)
    counts = dict(zip(val.domains, val.counts))
    total = len(config.modes) * config.num_outs_per_domain * sum(counts[s] for s, _ in tasks)
    bar = ProgressBar(total, desc=f"Evaluating step {step}: ") if progress else None
    results = {}
    for mode in config.modes:
        rng = np.random.default_rng(config.seed)
        fid, lpips = {}, {}
        for trg in domains:
            refs = None
            if mode == "reference":
                refs = iter(
                    pipeline.reference_dataset(
                        val,
                        model.img_size,
                        config.val_batch_size,
                        val.domains.index(trg),
                        config.seed,
                    )
                )
            for src in [d for d in domains if d != trg]:
                task = f"{src}2{trg}"
                out_dir = image_dir and os.path.join(image_dir, mode, task)
                features, lpips[task] = _run_task(
                    networks, metrics, val, src, trg, mode, rng, refs, out_dir, bar
                )
                fid[task] = frechet.frechet_distance_to_samples(
                    *metrics.real_statistics(trg, model.img_size, train), features
                )
                logging.info("%s %s: FID %.4f, LPIPS %.4f", mode, task, fid[task], lpips[task])
        for name, values in (("FID", fid), ("LPIPS", lpips)):
            for task, value in values.items():
                results[f"{name}_{mode}/{task}"] = float(value)
            results[f"{name}_{mode}/mean"] = float(np.mean(list(values.values())))
    if bar:
        bar.close()
    return results


def _run_task(networks, metrics, val, src, trg, mode, rng, refs, out_dir, bar):
    """Translates a source domain's validation images into the target domain.

    Returns:
      (features float32 [N * num_outs, 2048] of the 8-bit outputs, the task's LPIPS).
    """
    config, model = metrics.config, networks.config
    y_id = list(model.domain_names).index(trg)
    features, lpips_values = [], []
    batches = pipeline.eval_dataset(
        val, model.img_size, config.val_batch_size, domain=val.domains.index(src)
    )
    for i, (x_src, _, _) in enumerate(batches):
        n = int(x_src.shape[0])
        y_trg = tf.fill([n], y_id)  # [N]
        group = []
        for j in range(config.num_outs_per_domain):
            if mode == "latent":
                z_trg = rng.standard_normal([n, model.latent_dim]).astype(np.float32)
                s_trg = networks.mapping_network(tf.constant(z_trg), y_trg)  # [N, style_dim]
            else:
                x_ref, _, _ = next(refs)
                s_trg = networks.style_encoder(x_ref[:n], y_trg)  # [N, style_dim]
            x_fake = translation.generate(networks, x_src, s_trg, uint8=False)  # [N, S, S, 3]
            group.append(x_fake)
            x_fake_u8 = to_uint8(x_fake)
            features.append(metrics.extractor.features(x_fake_u8))
            if out_dir:
                for k, image in enumerate(x_fake_u8):
                    name = "%.4i_%.2i.png" % (i * config.val_batch_size + k + 1, j + 1)
                    image_io.save_image(os.path.join(out_dir, name), image)
            if bar:
                bar.update(n)
        lpips_values.append(metrics.lpips.lpips_given_images(group))
    return np.concatenate(features), float(np.mean(lpips_values))


def write_results(results, path, writer=None, step=0):
    """Writes the results as JSON (atomically) and, given a `tf.summary` writer, as scalars."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    files.write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    if writer is not None:
        with writer.as_default():
            for name, value in results.items():
                tf.summary.scalar(name, value, step=step)
        writer.flush()
