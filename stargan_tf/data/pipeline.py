"""tf.data pipelines: balanced training examples with references, and ordered evaluation batches.

A *source* is where images come from:
  * a split directory in the TFRecord layout of `stargan_tf.data.format` ("OUT/train"), or
  * `tfds:NAME[:split]`, a TensorFlow Datasets image dataset whose class label is the domain, or
    `tfds:imagefolder:/root_dir[:split]` (a `root_dir/<split>/<label>/<img>` tree), see
    `stargan_tf.data.tfds_source`.

Training (`train_dataset`): every example draws a source domain and a target domain uniformly
and independently, so sources are balanced over domains whatever their sizes (the official
sampler weights each image by 1/count of its domain: the same distribution); x_real is the next
image of the source domain's stream, x_ref and x_ref2 the next two of the target domain's. Each
domain's stream reads the split in a shuffled shard order, keeps the domain's records, shuffles
them in a buffer of *encoded* records and repeats; one stream per domain serves both roles.
All other randomness (domains, z codes, augmentation) is a stateless function of
(seed, input pipeline id, example index), so the same seed gives the same batches.

Resuming: `train_dataset(..., start_step=k)` yields exactly the batches an uninterrupted pipeline
yields after k steps (the shuffles are seeded, so the streams replay identically; the examples
already consumed are skipped before decoding). This is how the trainer resumes: tf.distribute
iterators cannot be checkpointed. A plain iterator of this dataset can also be checkpointed
(`tf.train.Checkpoint(iterator=it)`): its state is the read positions, the shuffle buffers
(encoded bytes: at most the split's size once over, see `shuffle_buffer`) and the uint8 batches
being made ahead.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from stargan_tf.data import augment
from stargan_tf.data.source import Source, split_dir_source
from stargan_tf.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 1000  # Encoded records per domain; see `train_dataset`.
# Training batches made ahead of the consumer. The fused map-and-batch stage before it already
# works several batches ahead; iterator checkpoints save both stages' batches.
_PREFETCH_BATCHES = 1
_UNIFORMS = "_augment_uniforms"  # Per-example key of the augmentation's random numbers.


def open_source(source):
    """A `Source` from a split directory, a `tfds:` string, or a `Source` (returned as is)."""
    if isinstance(source, Source):
        return source
    source = str(source)
    if source.startswith("tfds:"):
        from stargan_tf.data import tfds_source  # Imports tensorflow_datasets: slow, so lazily.

        return tfds_source.open_tfds_source(source)
    return split_dir_source(source)


def resolve_augment_on(augment_on):
    """ "auto" -> "device" when a GPU or TPU is visible (resampling is nearly free there and the
    CPU threads feeding it only decode), else "host" (on a CPU, the batched gathers of
    `augment.crop_resize_flip` cost several times the per-image resize)."""
    if augment_on != "auto":
        return augment_on
    return "device" if accelerators() else "host"


def _check_source(source, img_size):
    if source.num_domains == 0:
        raise UserError(f"{source.name} has no domains.")
    empty = [d for d, c in zip(source.domains, source.counts) if c == 0]
    if empty:
        raise UserError(f"{source.name}: domain(s) {', '.join(empty)} have no images.")
    if source.img_size is not None and source.img_size != img_size:
        logging.info(
            "%s holds %d px images; they are resized to img_size=%d.",
            source.name,
            source.img_size,
            img_size,
        )


def decode(image_bytes):
    """Encoded JPEG/PNG/GIF/BMP/WebP bytes -> uint8 [H, W, 3] (grayscale expanded, alpha
    dropped)."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def accelerators():
    """The GPUs and TPUs TensorFlow sees (physical devices: the runtime is not started)."""
    return tf.config.list_physical_devices("GPU") + tf.config.list_physical_devices("TPU")


def input_threads():
    """The threads tf.data's pipelines get: None (tf.data's default, a pool as large as the
    machine) when a GPU or TPU trains, else an eighth of the cores, at least one.

    When the CPU itself trains, every core is busy in the step's convolutions, and the pipeline
    needs a few per cent of the CPU (at 32 px, 0.26 CPU ms per image, 6 ms of a 0.42 s
    iteration; `tools/benchmark_input.py`). A pool as large as the machine wakes a thread per
    core for it, which preempts the step's intra-op threads and costs the step more than the
    work itself. On 2 cores, one pipeline thread and the default strategy on one device
    (`train.make_strategy`) together made `stargan_tf.train` ~9% faster end to end at 32 px
    (0.51 -> 0.46 s per iteration, means of 4 and 3 runs; README, Performance).
    """
    if accelerators():
        return None
    return max(1, (os.cpu_count() or 1) // 8)


def deterministic_options():
    """tf.data options of every pipeline here: deterministic element order, and on a CPU-only
    host a small private thread pool (`input_threads`)."""
    options = tf.data.Options()
    options.deterministic = True
    threads = input_threads()
    if threads is not None:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    return options


def _seed_ints(seed, pipeline_id, stream):
    """Two 31-bit ints for tf.data's seeded ops, distinct per (seed, pipeline, stream)."""
    state = np.random.SeedSequence([seed, pipeline_id, stream]).generate_state(2)
    return [int(s) & 0x7FFFFFFF for s in state]


def _domain_stream(source, domain, shuffle_buffer, seeds):
    """Endless shuffled records of one domain: each pass yields each of its records once."""
    records = source.read(seeds[0], domain)
    if not source.shuffles_records:
        buffer = max(1, min(source.counts[domain], shuffle_buffer))
        records = records.shuffle(buffer, seed=seeds[1], reshuffle_each_iteration=True)
    return records.repeat()


def train_dataset(
    source,
    img_size,
    batch_size,
    latent_dim,
    seed,
    randcrop_prob=0.5,
    input_context=None,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    start_step=0,
    normalize=True,
    augment_on="host",
):
    """Endless balanced training batches of one input pipeline.

    Each example: a source domain y_org and a target domain y_trg, each uniform over the domains
    and independent (y_trg may equal y_org, as in the official code); x_real an image of y_org;
    x_ref and x_ref2 two images of y_trg, *different* images whenever the domain has two or more
    (the official loader pairs each reference with a partner fixed once per run, possibly itself;
    drawing the pair afresh and distinct is a deliberate improvement); z_trg, z_trg2 ~ N(0, I).
    Within a domain, images are drawn without replacement from its shuffled stream (every image
    of a domain is used once before any is used twice), where the official sampler draws with
    replacement. x_real, x_ref and x_ref2 are each augmented independently (`augment.augment`:
    random resized crop with probability `randcrop_prob`, resize, horizontal flip); an image
    whose size is not img_size is resized (bilinear, antialiased when shrinking).

    Args:
      source: a split directory (`stargan_tf.data.format`), a `tfds:` string (see
        `stargan_tf.data.tfds_source`) or a `Source`.
      img_size: side of the output images in pixels.
      batch_size: examples per batch of *this pipeline*. With `input_context` it is the
        per-replica batch: pass `input_context.get_per_replica_batch_size(global_batch)`.
      latent_dim: size of z_trg and z_trg2.
      seed: non-negative int. The same seed (and input pipeline) gives the same batches.
      randcrop_prob: probability of the random resized crop, per image.
      input_context: a `tf.distribute.InputContext`, from
        `strategy.distribute_datasets_from_function`. Its `input_pipeline_id` is folded into the
        seed, so workers draw different examples. (Replicas fed by one pipeline get different,
        consecutive batches of it.) Every pipeline samples from the whole split: none is sharded,
        so no pipeline misses a small domain.
      shuffle_buffer: encoded records held per domain to shuffle its stream (at most the domain's
        size: a smaller domain is shuffled completely each pass). It sets memory use and the size
        of iterator checkpoints: about num_domains * min(count, shuffle_buffer) * record size.
      start_step: training steps already done: the pipeline starts with the batches that follow
        them, exactly as an uninterrupted run would see them (resume). The examples consumed are
        skipped before decoding: the cost is reading their records, not decoding them.
      normalize: map the images to float32 [-1, 1] (`augment.normalize`). False yields uint8
        images, a quarter of the bytes to copy to the accelerator, which the trainer normalises
        there (on a GPU that costs nothing, on the input pipeline's CPU threads a sixth of the
        decoding time at 512 px).
      augment_on: "host" augments each image in the pipeline. "device" leaves the crops,
        resizes and flips to the training step: the pipeline only decodes (and resizes images
        not of img_size) and adds the random choices as `augment.CROPS_KEY`, int32 [B, 3, 5];
        `augment.finish_batch` applies them on the accelerator, with the same result as "host"
        (up to a rare pixel one level apart). On a GPU this takes the resampling (as costly as
        the decoding at 512 px) off the CPU threads that feed it. With `normalize`, the
        pipeline applies them itself. Images not of img_size are resized before the crop
        (two resamplings instead of "host"'s one).

    Returns:
      A `tf.data.Dataset` of dicts with
        x_real, x_ref, x_ref2: float32 [B, img_size, img_size, 3] in [-1, 1] (uint8 [0, 255]
          when not `normalize`);
        y_org, y_trg: int32 [B];
        z_trg, z_trg2: float32 [B, latent_dim];
        and with augment_on="device" and not `normalize`, `augment.CROPS_KEY`: int32 [B, 3, 5].
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    if augment_on not in ("host", "device"):
        raise ValueError(f'augment_on must be "host" or "device", got {augment_on!r}.')
    source = open_source(source)
    _check_source(source, img_size)
    pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
    if input_context is not None:
        logging.info(
            "Input pipeline %d of %d: per-replica batch %d.",
            pipeline_id,
            input_context.num_input_pipelines,
            batch_size,
        )
    examples = _draw_examples(source, seed, pipeline_id, shuffle_buffer)
    if start_step:
        # Each step takes one batch per replica this pipeline feeds.
        replicas = 1
        if input_context is not None:
            replicas = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        examples = examples.skip(start_step * replicas * batch_size)
    make_example = _example_maker(img_size, latent_dim, randcrop_prob, augment_on)
    examples = examples.map(make_example, num_parallel_calls=AUTOTUNE, deterministic=True)
    batches = examples.batch(batch_size, drop_remainder=True)
    if augment_on == "device":
        batches = batches.map(_crops_from_uniforms(img_size, randcrop_prob))
    batches = batches.prefetch(_PREFETCH_BATCHES)
    if normalize:
        # Normalised after the prefetch buffer, which (like the map's in-flight results) holds
        # uint8.
        batches = batches.map(augment.finish_batch)
    return batches.with_options(deterministic_options())


def _draw_examples(source, seed, pipeline_id, shuffle_buffer):
    """Endless (keys [7, 2], records of x_real, x_ref, x_ref2) pairs: the stateless seeds of each
    example and the three encoded images drawn from the domains' streams."""
    num_domains = source.num_domains
    base_seed = tf.constant([seed, pipeline_id], tf.int64)

    def example_keys(index):
        # 7 seeds of example `index`: y_org, y_trg, z_trg, z_trg2, and the 3 images' augmentations.
        return tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(base_seed, index), 7
        )  # [7, 2]

    keys = tf.data.Dataset.counter().map(example_keys)

    def domain_choices(k):
        y_org = tf.random.stateless_uniform([], k[0], 0, num_domains, dtype=tf.int64)
        y_trg = tf.random.stateless_uniform([], k[1], 0, num_domains, dtype=tf.int64)
        return tf.stack([y_org, y_trg, y_trg])  # Streams to take x_real, x_ref, x_ref2 from.

    streams = [
        _domain_stream(source, d, shuffle_buffer, _seed_ints(seed, pipeline_id, d))
        for d in range(num_domains)
    ]
    triples = tf.data.Dataset.choose_from_datasets(
        streams, keys.map(domain_choices).unbatch()
    ).batch(3, drop_remainder=True)  # {"image": [3], "label": [3], "filename": [3]}
    counts = tf.constant(source.counts, tf.int64)

    def distinct_refs(k, rec):
        # x_ref, x_ref2 are consecutive in their domain's stream: different images, except when
        # one pass ends with the image the next begins with (rare); such examples are dropped.
        return (rec["filename"][1] != rec["filename"][2]) | (counts[rec["label"][1]] < 2)

    return tf.data.Dataset.zip(keys, triples).filter(distinct_refs)


def _example_maker(img_size, latent_dim, randcrop_prob, augment_on):
    """The map from (keys, records) to one training example (see `train_dataset`)."""

    def make_example(k, rec):
        images = [decode(rec["image"][j]) for j in range(3)]
        example = {
            "y_org": tf.cast(rec["label"][0], tf.int32),
            "y_trg": tf.cast(rec["label"][1], tf.int32),
            "z_trg": tf.random.stateless_normal([latent_dim], k[2]),
            "z_trg2": tf.random.stateless_normal([latent_dim], k[3]),
        }
        if augment_on == "host":
            x = [augment.augment(images[j], img_size, k[4 + j], randcrop_prob) for j in range(3)]
        else:
            x = [augment.resize(image, img_size) for image in images]
            # The random numbers here; the crop windows from them once per batch (fewer ops).
            example[_UNIFORMS] = tf.stack([augment.augment_uniforms(k[4 + j]) for j in range(3)])
        example.update(x_real=x[0], x_ref=x[1], x_ref2=x[2])  # uint8 [S, S, 3] each
        return example

    return make_example


def _crops_from_uniforms(img_size, randcrop_prob):
    """The batch map that turns the examples' random numbers into crop windows (CROPS_KEY)."""

    def crops(batch):
        u = batch.pop(_UNIFORMS)  # [B, 3, U]
        windows = augment.params_from_uniforms(
            tf.reshape(u, [-1, u.shape[-1]]), img_size, img_size, randcrop_prob
        )
        batch[augment.CROPS_KEY] = tf.reshape(windows, [-1, 3, 5])
        return batch

    return crops


def _eval_map(img_size):
    def fn(rec):
        x = augment.normalize(augment.resize(decode(rec["image"]), img_size))
        return x, tf.cast(rec["label"], tf.int32), rec["filename"]

    return fn


def eval_dataset(source, img_size, batch_size, domain=None):
    """Every image of a split (or of one of its domains) once, in its stored order, without
    augmentation.

    Args:
      source: a split directory, a `tfds:` string or a `Source` (see `train_dataset`).
      img_size: side of the output images; other sizes are resized (bilinear, antialiased
        when shrinking).
      batch_size: images per batch; the last batch may be smaller.
      domain: a domain id to read only its images; None = all.

    Returns:
      A `tf.data.Dataset` of tuples (x float32 [B, S, S, 3] in [-1, 1], y int32 [B],
      filename string [B]).
    """
    source = open_source(source)
    _check_source(source, img_size)
    ds = source.read(None, domain).map(
        _eval_map(img_size), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    return ds.batch(batch_size).prefetch(AUTOTUNE).with_options(deterministic_options())


def reference_dataset(source, img_size, batch_size, domain, seed):
    """Endless batches of one domain's images, in shuffled passes, without augmentation: the
    references of the evaluation (the official one cycles a shuffled loader of them).

    Args:
      source: as for `eval_dataset`.
      img_size: side of the output images.
      batch_size: images per batch (every batch full; batches run across passes).
      domain: the domain id.
      seed: non-negative int; the same seed gives the same batches.

    Returns:
      A `tf.data.Dataset` of tuples as `eval_dataset`'s.
    """
    source = open_source(source)
    _check_source(source, img_size)
    records = _domain_stream(source, domain, DEFAULT_SHUFFLE_BUFFER, _seed_ints(seed, 0, domain))
    ds = records.map(_eval_map(img_size), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(1)
    return ds.with_options(deterministic_options())
