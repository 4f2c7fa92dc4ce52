"""The StarGAN v2 training loop under tf.distribute.

One iteration, in the official order: D step (latent-made fake), D step (reference-made fake),
G step on the latent branch updating G, F and E, G step on the reference branch updating G,
then the EMA of G, F and E.
"""

import functools
import math
import os
import shutil
import time

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from stargan_tf import losses
from stargan_tf import model_dir
from stargan_tf.model_dir import FORMAT, VERSION, fan_checkpoint, nets_checkpoint
from stargan_tf.data import augment
from stargan_tf.errors import UserError, describe
from stargan_tf.layers import op_order
from stargan_tf.networks import build_networks, official_variable_map
from stargan_tf.official.fan import convert_official_fan
from stargan_tf.training import config as config_lib
from stargan_tf.training import init_from, recovery, threads
from stargan_tf.training.preemption import Preempted, StopRequest
from stargan_tf.training.optimizer import AdamL2
from stargan_tf.training.samples import render_grid

STOP_KEY = "_stop_requested"  # not a metric: > 0 when some worker was signalled to stop
SAMPLES_SUBDIR = "samples"
LOGS_SUBDIR = "logs"
EVAL_SUBDIR = "eval"


def is_chief(strategy):
    """True on the worker that writes logs, summaries and the real checkpoints."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    # Worker 0 leads only in clusters without a chief task (TensorFlow's own rule).
    cluster = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


class NonFiniteLoss(RuntimeError):
    """A loss or weight became NaN/Inf under --nan_policy=stop; nothing was saved after it."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


def copy_weights(src, dst):
    """Copies every weight of Networks `src` into the same-named weights of `dst` (both present)."""
    src_map, dst_map = official_variable_map(src), official_variable_map(dst)
    for key, var in dst_map.items():
        if key in src_map:
            var.assign(src_map[key])


def configure_process(config):
    """Makes the process-wide TensorFlow settings a run of `config` needs: the intra-op threads
    on a CPU (stargan_tf/training/threads.py), op determinism (--deterministic) and the Keras
    mixed-precision policy. TensorFlow offers them only per process, so the entry point makes
    them, before it builds a strategy or a `Trainer` (the threads only take effect before
    TensorFlow's runtime starts)."""
    import keras

    intra = threads.configure(config)
    if intra is not None:
        logging.info(
            "TensorFlow intra-op threads: %d (small ops on a CPU: stargan_tf/training/threads.py; "
            "%s overrides)",
            intra,
            threads.ENV,
        )
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")


def _check_process(config):
    import keras

    policy = keras.mixed_precision.global_policy().name
    if policy != (config.mixed_precision or "float32"):
        raise ValueError(
            f"The process's Keras dtype policy is {policy}, the config's "
            f"mixed_precision is {config.mixed_precision!r}: call "
            "configure_process(config) before building the Trainer."
        )


class Trainer:
    """Trains StarGAN v2 (after `configure_process(config)`).

    Args:
      config: the TrainConfig (its model config names the domains of the data).
      strategy: a tf.distribute strategy; the networks and optimizers are created in its scope.
      train_input: a tf.data.Dataset of *global* batches (split across replicas), or a function
        `(input_context, start_step) -> per-replica tf.data.Dataset`
        (`distribute_datasets_from_function`). Elements are dicts with x_real, y_org, x_ref,
        x_ref2, y_trg, z_trg, z_trg2; images float32 in [-1, 1], or uint8 (normalised in the
        step, on the device). The data position is restored on resume as a function of the
        step (tf.distribute iterators cannot be checkpointed): a Dataset is skipped by the steps
        done, a function receives the step to start from and must yield the batches that follow.
      sample_input: dict with x_src [K,S,S,3], y_src [K], x_ref [R,S,S,3], y_ref [R] for the
        sample grid, or None for no grid.
    """

    def __init__(self, config, strategy, train_input, sample_input=None):
        config.validate(strategy.num_replicas_in_sync)
        _check_process(config)
        self.config = config
        self.strategy = strategy
        self.chief = is_chief(strategy)
        resolver = getattr(strategy, "cluster_resolver", None)
        self.multi_worker = bool(resolver is not None and resolver.cluster_spec().as_dict())
        self.global_batch = config.batch_size
        self.ckpt_dir = model_dir.checkpoint_dir(config.workdir)
        self.samples_dir = os.path.join(config.workdir, SAMPLES_SUBDIR)
        # --init_from is checked first (a bad directory or domain map fails before any building);
        # a workdir with checkpoints of this run resumes from them instead.
        self.init = (
            init_from.InitFrom(
                config,
                resuming=bool(recovery.candidate_steps(self.ckpt_dir)),
                saved_record=init_from.saved_init_record(config.workdir),
            )
            if config.init_from
            else None
        )
        with strategy.scope():
            self._build_networks()
        if self.init is not None and self.init.source is not None:
            self._apply_init()  # sets the EMA networks too
        else:
            # The EMA networks start from the initialised weights (the official code copies them
            # before its He init, so its EMA starts from PyTorch's default init: a quirk not kept).
            copy_weights(self.nets, self.nets_ema)

        self.train_input = train_input
        self.iterator = None  # made in train(), once the step to resume from is known
        self.sample_input = sample_input
        self.checkpoint = self._make_checkpoint()
        directory = (
            self.ckpt_dir
            if self.chief
            else os.path.join(config.workdir, f".worker-tmp-{strategy.cluster_resolver.task_id}")
        )
        self.manager = recovery.CheckpointSaver(self.checkpoint, directory, config.keep_checkpoints)
        self._train_step = self._make_train_step()
        self._d_warmup_step = None  # made at the first D-only iteration (--d_warmup_iters)
        self.writer = (
            tf.summary.create_file_writer(os.path.join(config.workdir, LOGS_SUBDIR))
            if self.chief
            else tf.summary.create_noop_writer()
        )
        self.eval_metrics = None  # The FID and LPIPS networks, built at the first evaluation.

    # Set-up helpers.

    def _build_networks(self):
        """The networks, their EMA copies, the step and the optimizers (in the strategy's scope)."""
        config = self.config
        # The frozen FAN makes the high-pass masks of faces (w_hpf > 0); read first, so that a
        # bad --wing_path fails before the networks are built.
        self.fan = convert_official_fan(config.wing_path) if config.model.w_hpf > 0 else None
        self.nets = build_networks(config.model, fan=self.fan)
        self.nets_ema = build_networks(config.model, discriminator=False, fan=self.fan)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.optimizers = {
            "discriminator": self._optimizer(config.lr),
            "generator": self._optimizer(config.lr),
            "mapping_network": self._optimizer(config.f_lr),
            "style_encoder": self._optimizer(config.lr),
        }
        for name, opt in self.optimizers.items():
            opt.build(getattr(self.nets, name).trainable_variables)

    def _make_checkpoint(self):
        """What a training checkpoint holds: step, networks, EMA networks, optimizers (and the
        FAN: the workdir samples and exports without --wing_path)."""
        fan_node = {"fan": fan_checkpoint(self.fan)} if self.fan is not None else {}
        return tf.train.Checkpoint(
            **fan_node,
            step=self.step,
            nets=nets_checkpoint(self.nets),
            nets_ema=nets_checkpoint(self.nets_ema),
            optimizers=tf.train.Checkpoint(
                **{
                    name: self._optimizer_checkpoint(opt, getattr(self.nets, name))
                    for name, opt in self.optimizers.items()
                }
            ),
        )

    def _optimizer(self, lr):
        c = self.config
        opt = AdamL2(
            lr, c.beta1, c.beta2, 1e-8, c.weight_decay, skip_non_finite=c.nan_policy == "skip"
        )
        if c.mixed_precision == "mixed_float16":
            import keras

            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    @staticmethod
    def _optimizer_checkpoint(opt, net):
        inner = getattr(opt, "inner_optimizer", opt)
        nodes = {"iterations": inner.iterations}
        names = {id(var): key for key, var, _ in net.official_weights()}
        for slot in ("m", "v"):
            nodes[slot] = tf.train.Checkpoint(
                **{names[id(var)]: inner.slots(var)[slot] for var in net.trainable_variables}
            )
        if inner is not opt:  # the dynamic loss scale of mixed_float16
            nodes["loss_scale"] = opt.dynamic_scale
        return tf.train.Checkpoint(**nodes)

    def _apply_init(self):
        self.init.apply(self.nets, self.nets_ema, self.optimizers, self._optimizer_checkpoint)

    @property
    def d_warmup_iters(self):
        """The first iterations that train D alone (--d_warmup_iters, when D started fresh)."""
        return self.init.d_warmup_iters if self.init is not None else 0

    # The iteration.

    def _apply(self, opt, grads, variables):
        opt.apply_gradients(zip(grads, variables))

    def _replica_step(self, batch, step, stop, d_only=False):
        c, nets = self.config, self.nets
        # Here, on the device: the crops, resizes and flips the pipeline left to it
        # (augment_on="device"), and uint8 images (`normalize=False`) mapped to [-1, 1].
        batch = augment.finish_batch(batch)
        x_real, y_org, y_trg = batch["x_real"], batch["y_org"], batch["y_trg"]
        if c.fault_nan_step is not None:  # fault injection for tests of --nan_policy
            x_real = tf.where(step + 1 == c.fault_nan_step, x_real * float("nan"), x_real)
        x_ref, x_ref2 = batch["x_ref"], batch["x_ref2"]
        z_trg, z_trg2 = batch["z_trg"], batch["z_trg2"]
        # Every loss is a mean over the local batch; scaled by local/global and summed over the
        # replicas (as Keras optimizers sum gradients) it is the mean over the global batch.
        scale = tf.cast(tf.shape(x_real)[0], tf.float32) / float(self.global_batch)
        lambda_ds = losses.lambda_ds_at(step, c.lambda_ds, c.ds_iter)
        # Faces (w_hpf > 0): the masks of x_real for every translation of it, and the FAN itself
        # for the masks of the fakes in the cycle reconstruction, as the official solver does.
        fan = self.fan.get_heatmap if self.fan is not None else None
        masks = nets.masks(x_real)
        metrics = {}

        # Train the discriminator: latent branch, then reference branch.
        d_vars = nets.discriminator.trainable_variables
        opt_d = self.optimizers["discriminator"]
        for branch in ({"z_trg": z_trg}, {"x_ref": x_ref}):
            with tf.GradientTape() as tape:
                loss, m = losses.discriminator_loss(
                    nets, x_real, y_org, y_trg, masks=masks, lambda_reg=c.lambda_reg, **branch
                )
                scaled = opt_d.scale_loss(loss * scale)
            self._apply(opt_d, tape.gradient(scaled, d_vars), d_vars)
            metrics.update(m)
        if d_only:  # --d_warmup_iters: G, F and E stay as they are
            return self._replica_metrics(metrics, scale, lambda_ds, stop)

        # Train the generator: the latent branch updates G, F and E; the reference branch G.
        weights = dict(lambda_sty=c.lambda_sty, lambda_ds=lambda_ds, lambda_cyc=c.lambda_cyc)
        names = ("generator", "mapping_network", "style_encoder")
        var_lists = [getattr(nets, n).trainable_variables for n in names]
        with tf.GradientTape() as tape:
            loss, m = losses.generator_loss(
                nets, x_real, y_org, y_trg, z_trgs=(z_trg, z_trg2), masks=masks, fan=fan, **weights
            )
            scaled = self.optimizers["generator"].scale_loss(loss * scale)
        grads = tape.gradient(scaled, [v for vs in var_lists for v in vs])
        start = 0
        for name, vs in zip(names, var_lists):
            self._apply(self.optimizers[name], grads[start : start + len(vs)], vs)
            start += len(vs)
        metrics.update(m)
        g_vars = var_lists[0]
        with tf.GradientTape() as tape:
            loss, m = losses.generator_loss(
                nets, x_real, y_org, y_trg, x_refs=(x_ref, x_ref2), masks=masks, fan=fan, **weights
            )
            scaled = self.optimizers["generator"].scale_loss(loss * scale)
        self._apply(self.optimizers["generator"], tape.gradient(scaled, g_vars), g_vars)
        metrics.update(m)
        return self._replica_metrics(metrics, scale, lambda_ds, stop)

    @staticmethod
    def _replica_metrics(metrics, scale, lambda_ds, stop):
        metrics = {k: tf.cast(v, tf.float32) * scale for k, v in metrics.items()}
        metrics["G/lambda_ds"] = tf.cast(lambda_ds, tf.float32) * scale
        # A stop request rides the metrics' all-reduce: every worker learns of it at this step.
        # (tf.identity: one tensor per replica; the input itself would regroup to a single value.)
        metrics[STOP_KEY] = tf.identity(stop)
        return metrics

    def _update_ema(self):
        beta = self.config.ema_beta
        ema = official_variable_map(self.nets_ema)
        trained = official_variable_map(self.nets)
        for key, e in ema.items():
            v = trained[key]
            # torch.lerp(param, param_ema, beta) = param + beta * (param_ema - param)
            e.assign(v + beta * (e - v))

    def _make_train_step(self, d_only=False):
        replica_step = functools.partial(self._replica_step, d_only=d_only)
        if self.config.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)

        @tf.function
        def train_step(iterator, stop):
            batch = next(iterator)
            per_replica = self.strategy.run(
                replica_step, args=(batch, self.step.read_value(), stop)
            )
            if not d_only:  # the EMA of G, F and E is frozen with them
                self._update_ema()
            self.step.assign_add(1)
            return {
                k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()
            }

        return train_step

    def make_iterator(self, start_step=0):
        """A distributed iterator over the training input from `start_step` on."""
        return self._make_iterator(start_step)

    def run_iteration(self, iterator, stop=False):
        """Runs one training iteration from `iterator`; returns its metrics as Python floats.

        `stop` tells every worker that this one was asked to stop; the returned STOP_KEY entry
        is > 0 when any worker was.
        """
        train_step = self._train_step
        if self.d_warmup_iters and int(self.step.numpy()) < self.d_warmup_iters:
            if self._d_warmup_step is None:
                self._d_warmup_step = self._make_train_step(d_only=True)
            train_step = self._d_warmup_step
        metrics = train_step(iterator, tf.constant(1.0 if stop else 0.0))
        return {k: float(v) for k, v in metrics.items()}

    def train_step_graph(self, iterator, official_order=False):
        """The traced graph of one iteration (for counting its FLOPs); traces, does not run.

        With `official_order`, a fresh trace whose blocks run the official code's order of ops
        (stargan_tf/layers/op_order.py): the same iteration as the official code computes it.
        """
        if not official_order:
            return self._train_step.get_concrete_function(iterator, tf.constant(0.0)).graph
        with op_order.official():
            step = self._make_train_step()
            return step.get_concrete_function(iterator, tf.constant(0.0)).graph

    def _make_iterator(self, start_step):
        train_input = self.train_input
        if isinstance(train_input, tf.data.Dataset):
            dist = self.strategy.experimental_distribute_dataset(train_input.skip(start_step))
        else:
            dist = self.strategy.distribute_datasets_from_function(
                lambda ctx: train_input(ctx, start_step)
            )
        return iter(dist)

    # Checkpoints.

    def restore(self):
        """Restores the latest checkpoint that loads (or `resume_step`); returns its step.

        A damaged latest checkpoint (a crash, a bad copy) is reported, moved aside and the one
        before it used; leftovers of killed saves are removed.
        """
        c = self.config
        self._check_saved_config()
        if self.chief:
            recovery.remove_partial_writes(self.ckpt_dir)
        if c.resume_step is not None:
            path = recovery.prefix(self.ckpt_dir, c.resume_step)
            if not tf.io.gfile.exists(path + ".index"):
                raise UserError(
                    f"--resume_step={c.resume_step}: {self.ckpt_dir} has no checkpoint "
                    f"of that step."
                )
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except recovery.LOAD_ERRORS as e:
                raise UserError(
                    f"--resume_step={c.resume_step}: {path} does not load ({e}); "
                    "choose another step."
                ) from None
        else:
            step = recovery.restore_newest_valid(self.checkpoint, self.ckpt_dir, self.chief)
            if step is None:
                if self.init is not None and not self.init.applied:  # the checkpoints went away
                    self._apply_init()
                return 0
            path = recovery.prefix(self.ckpt_dir, step)
        logging.info("Resumed from %s at step %d.", path, int(self.step.numpy()))
        return int(self.step.numpy())

    def _check_saved_config(self):
        if not os.path.exists(os.path.join(self.config.workdir, model_dir.CONFIG_FILE)):
            return
        saved = model_dir.read_meta(self.config.workdir)
        if "train" not in saved:
            raise UserError(
                f"{self.config.workdir} holds a model directory that is not a training "
                "run (a converted checkpoint?); pass it as --init_from, and a new --workdir."
            )
        diff = config_lib.differences(config_lib.TrainConfig.from_dict(saved["train"]), self.config)
        if diff:
            raise UserError(
                f"--workdir={self.config.workdir} holds a run of another config: "
                f"{'; '.join(diff)}. Use a new --workdir, or the same flags."
            )

    def _write_config(self):
        if not self.chief:
            return
        os.makedirs(self.config.workdir, exist_ok=True)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "schema_version": config_lib.SCHEMA_VERSION,
            "model": self.config.model.to_dict(),
            "train": self.config.to_dict(),
            "provenance": config_lib.provenance(),
        }
        if self.init is not None and self.init.record is not None:
            meta["init"] = self.init.record  # what --init_from loaded; kept when resuming
        model_dir.write_meta(self.config.workdir, meta)
        from stargan_tf import model_card

        model_card.write_card(self.config.workdir, meta)

    def save(self):
        """Saves a checkpoint of the current step (never one with non-finite weights)."""
        bad = [
            v.path
            for v in self._checked_variables()
            if not bool(tf.reduce_all(tf.math.is_finite(v)))
        ]
        if bad:
            raise NonFiniteLoss(
                f"step {int(self.step.numpy())}: weights {', '.join(bad[:3])} are "
                "NaN/Inf; not saving them. The last checkpoint is untouched."
            )
        try:
            path = self.manager.save(int(self.step.numpy()))
        except (tf.errors.OpError, OSError) as e:
            if self.chief:
                recovery.remove_partial_writes(self.ckpt_dir)  # give the space back
            latest = tf.train.latest_checkpoint(self.ckpt_dir)
            raise CheckpointWriteError(
                f"step {int(self.step.numpy())}: writing the checkpoint to {self.ckpt_dir} failed "
                f"({describe(e)}); "
                + (
                    f"the last checkpoint ({os.path.basename(latest)}) is intact. "
                    if latest
                    else ""
                )
                + "Free disk space (or fix the directory) and run the same command again."
            ) from None
        if not self.chief:  # Non-chief workers take part in the save, then drop their copy.
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path

    def _checked_variables(self):
        return [v for _, net in self.nets.items() for v in net.trainable_variables]

    # Monitoring.

    def sample(self, step):
        """Renders the fixed sample grid with the EMA networks: a PNG and a TensorBoard image."""
        if self.sample_input is None or not self.chief:
            return None
        s = self.sample_input
        rng = np.random.default_rng(self.config.seed)
        z = rng.standard_normal([self.config.model.num_domains, self.config.model.latent_dim])
        grid = render_grid(
            self.nets_ema,
            s["x_src"],
            s["y_src"],
            s["x_ref"],
            s["y_ref"],
            z.astype(np.float32),
            masks=self.nets_ema.masks(s["x_src"]),
        )
        os.makedirs(self.samples_dir, exist_ok=True)
        path = os.path.join(self.samples_dir, f"{step:06d}.png")
        Image.fromarray(grid).save(path)
        with self.writer.as_default():
            tf.summary.image("samples", grid[None], step=step)
        return path

    def evaluate(self, step):
        """FID and LPIPS of the EMA networks by the official protocol (chief only): writes
        eval/metrics_<step>.json and TensorBoard scalars; returns the results."""
        if not self.chief:
            return None
        from stargan_tf.metrics import protocol  # Imports the Inception and LPIPS networks.

        if self.eval_metrics is None:
            self.eval_metrics = protocol.Metrics(self.config.eval_config())
        results = protocol.evaluate(self.nets_ema, self.eval_metrics, step=step)
        path = os.path.join(self.config.workdir, EVAL_SUBDIR, f"metrics_{step:06d}.json")
        protocol.write_results(results, path, self.writer, step)
        logging.info(
            "Evaluation at step %d: %s",
            step,
            ", ".join(f"{k} {v:.4f}" for k, v in results.items() if k.endswith("/mean")),
        )
        return results

    def _log(self, step, metrics, images_per_second, step_time, start_step, started):
        c = self.config
        with self.writer.as_default():
            for k, v in metrics.items():
                tf.summary.scalar(k, v, step=step)
            tf.summary.scalar("perf/images_per_second", images_per_second, step=step)
            tf.summary.scalar("perf/seconds_per_step", step_time, step=step)
        done = step - start_step
        eta = (time.time() - started) / max(done, 1) * (c.total_iters - step)
        main = " ".join(
            f"{k}={metrics[k]:.3f}"
            for k in (
                "D/latent/real",
                "D/latent/fake",
                "G/latent/adv",
                "G/latent/cyc",
                "G/ref/sty",
                "G/lambda_ds",
            )
            if k in metrics
        )  # D only: warm-up
        logging.info(
            "step %d/%d | %.1f img/s | %.2f s/step | ETA %s | %s",
            step,
            c.total_iters,
            images_per_second,
            step_time,
            _duration(eta),
            main,
        )

    # The loop.

    def train(self):
        """Trains until total_iters; returns the metrics of the last iteration.

        Raises:
          Preempted: SIGTERM/SIGINT (on any worker): the iteration in flight was finished and
            saved. NonFiniteLoss: a loss went NaN/Inf under nan_policy=stop.
        """
        lock = recovery.WorkdirLock(self.config.workdir).acquire() if self.chief else None
        try:
            with StopRequest() as stop_request:
                return self._train_loop(stop_request)
        finally:
            self.writer.flush()
            if lock:
                lock.release()

    def _train_loop(self, stop_request):
        c = self.config
        start_step = self.restore()
        self._write_config()
        self.iterator = self._make_iterator(start_step)
        if start_step >= c.total_iters:
            logging.info("Nothing to do: step %d >= --total_iters=%d.", start_step, c.total_iters)
            return {}
        started = window_start = time.time()
        window_steps = 0
        skipped = 0
        values = {}
        for _ in range(start_step, c.total_iters):
            values = self.run_iteration(self.iterator, stop_request.requested)
            # One worker stops at once; workers of a cluster stop at the step whose all-reduce
            # first carried the request, so that all of them save that same step.
            stop = values.pop(STOP_KEY) > 0 or (stop_request.requested and not self.multi_worker)
            step = int(self.step.numpy())
            window_steps += 1
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                if c.nan_policy == "stop":
                    raise NonFiniteLoss(self._non_finite_message(step, values, bad))
                skipped += 1
                logging.warning(
                    "step %d: non-finite %s; its updates were skipped "
                    "(--nan_policy=skip, %d skipped so far).",
                    step,
                    bad[0],
                    skipped,
                )
                with self.writer.as_default():
                    tf.summary.scalar("train/skipped_steps", skipped, step=step)
            # Print and write summaries.
            if step % c.print_every == 0 or step == c.total_iters:
                elapsed = time.time() - window_start
                self._log(
                    step,
                    values,
                    window_steps * self.global_batch / elapsed,
                    elapsed / window_steps,
                    start_step,
                    started,
                )
                window_start, window_steps = time.time(), 0
            # Render the fixed sample grid.
            if step % c.sample_every == 0 or step == c.total_iters:
                self.sample(step)
            # Save a checkpoint.
            saved = step % c.save_every == 0 or step == c.total_iters
            if saved:
                self.save()
            if stop:
                if not saved:
                    self.save()
                raise Preempted(step, stop_request.signal_name or "a signal to another worker")
            # Evaluate FID and LPIPS (not when stopping: a preempted run must exit quickly).
            if c.eval_every and step % c.eval_every == 0:
                self.evaluate(step)
        return values

    def _non_finite_message(self, step, values, bad):
        latest = tf.train.latest_checkpoint(self.ckpt_dir)
        kept = (
            f"the last checkpoint ({os.path.basename(latest)}) is untouched"
            if latest
            else ("no checkpoint had been saved yet")
        )
        others = f" (and {', '.join(bad[1:4])}{', ...' if len(bad) > 4 else ''})" if bad[1:] else ""
        return (
            f"step {step}: loss {bad[0]} is {values[bad[0]]}{others}; training stopped and "
            f"nothing was saved after it, {kept}. Run again to resume from it (lower --lr, "
            "or --nan_policy=skip to skip such updates)."
        )


def _duration(seconds):
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"
