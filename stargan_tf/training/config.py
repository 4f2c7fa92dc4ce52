"""The training configuration: one frozen dataclass, validated once, saved with the checkpoints."""

import dataclasses
import os
import platform
import subprocess
from typing import Optional

from stargan_tf.config import ModelConfig
from stargan_tf.errors import UserError

SCHEMA_VERSION = 1

# The mark of the fields that may change between a run and its resumption (they do not change
# what is trained; init_from and its options act once, when a run starts, and a resumed run does
# not load again): `field(default, metadata=RESUMABLE)`.
RESUMABLE = {"resumable": True}
NAN_POLICIES = ("stop", "skip")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data. Defaults: the official recipe.

    Attributes (official names; see `python -m stargan_tf.train --help` for each):
      model: the networks' config (num_domains and domain_names come from the data).
      train_data, val_data: a split directory (stargan-tf-make-tfrecords) or tfds:NAME[:split].
      workdir: checkpoints, samples and TensorBoard logs go under it.
      batch_size: global batch (over all replicas).
      total_iters: iterations to train (an iteration: D latent, D ref, G latent, G ref, EMA).
      save_every, sample_every, print_every: periods in iterations.
      keep_checkpoints: how many of the latest checkpoints to keep.
      resume_step: resume from this step instead of the latest (None: latest).
      init_from: a model directory (a converted official checkpoint, a training workdir) to
        start from: everything it holds (stargan_tf/training/init_from.py).
      init_domain_map: "new=old,...": the data's new domains that start from copies of a model
        domain's heads (domains of the same name keep theirs).
      init_optimizer: also load the Adam moments of an init_from workdir.
      d_warmup_iters: with init_from and a discriminator that starts fresh: train D alone (G, F,
        E and their EMA frozen) for this many first iterations.
      seed: seeds the data pipeline and the sample grid.
      deterministic: turn on TF op determinism (reproducible, slower).
      lambda_reg, lambda_sty, lambda_ds, lambda_cyc: loss weights; ds_iter: λ_ds decay length.
      lr, f_lr: learning rates (f_lr: the mapping network); beta1, beta2, weight_decay: Adam.
      ema_beta: EMA decay of the test networks.
      randcrop_prob: probability of the random resized crop.
      augment_on: "device": the training step crops, resizes and flips (the input pipeline only
        decodes); "host": the input pipeline does; "auto": device when a GPU or TPU is visible.
        The same images either way.
      jit_compile: compile the step with XLA; mixed_precision: "", mixed_float16, mixed_bfloat16.
      wing_path: the FAN weights (wing.ckpt) for w_hpf > 0.
      cpu_devices: split the CPU into this many logical devices (0: no split); for testing the
        multi-replica path on a CPU.
      nan_policy: "stop" on a non-finite loss, or "skip" updates with non-finite gradients.
      fault_nan_step: testing only: the input images of this step are made NaN.
      eval_every: evaluate FID and LPIPS (the official protocol) every this many iterations;
        0: never. inception, inception_weights, alexnet_weights, lpips_weights,
        num_outs_per_domain: see `stargan_tf.metrics.config.EvalConfig`.
    """

    model: ModelConfig = ModelConfig()
    train_data: str = dataclasses.field(default="", metadata=RESUMABLE)
    val_data: str = dataclasses.field(default="", metadata=RESUMABLE)
    workdir: str = ""
    batch_size: int = 8
    val_batch_size: int = dataclasses.field(default=32, metadata=RESUMABLE)
    total_iters: int = dataclasses.field(default=100_000, metadata=RESUMABLE)
    save_every: int = dataclasses.field(default=10_000, metadata=RESUMABLE)
    sample_every: int = dataclasses.field(default=5_000, metadata=RESUMABLE)
    print_every: int = dataclasses.field(default=10, metadata=RESUMABLE)
    keep_checkpoints: int = dataclasses.field(default=3, metadata=RESUMABLE)
    resume_step: Optional[int] = dataclasses.field(default=None, metadata=RESUMABLE)
    init_from: str = dataclasses.field(default="", metadata=RESUMABLE)
    init_domain_map: str = dataclasses.field(default="", metadata=RESUMABLE)
    init_optimizer: bool = dataclasses.field(default=False, metadata=RESUMABLE)
    d_warmup_iters: int = 0
    seed: int = 777
    deterministic: bool = False
    lambda_reg: float = 1.0
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0
    ds_iter: int = 100_000
    lambda_cyc: float = 1.0
    lr: float = 1e-4
    f_lr: float = 1e-6
    beta1: float = 0.0
    beta2: float = 0.99
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    randcrop_prob: float = 0.5
    augment_on: str = dataclasses.field(default="auto", metadata=RESUMABLE)
    jit_compile: bool = dataclasses.field(default=False, metadata=RESUMABLE)
    mixed_precision: str = ""
    wing_path: str = ""
    cpu_devices: int = dataclasses.field(default=0, metadata=RESUMABLE)
    nan_policy: str = dataclasses.field(default="stop", metadata=RESUMABLE)
    fault_nan_step: Optional[int] = dataclasses.field(default=None, metadata=RESUMABLE)
    eval_every: int = dataclasses.field(default=0, metadata=RESUMABLE)
    inception: str = dataclasses.field(default="official", metadata=RESUMABLE)
    inception_weights: str = dataclasses.field(default="", metadata=RESUMABLE)
    alexnet_weights: str = dataclasses.field(default="", metadata=RESUMABLE)
    lpips_weights: str = dataclasses.field(default="", metadata=RESUMABLE)
    num_outs_per_domain: int = dataclasses.field(default=10, metadata=RESUMABLE)

    def eval_config(self):
        """The `EvalConfig` of the evaluations during training (val_data: the training split
        when unset; the real images' statistics cached under workdir/eval/fid_stats)."""
        from stargan_tf.metrics.config import EvalConfig

        return EvalConfig(
            train_data=self.train_data,
            val_data=self.val_data or self.train_data,
            inception_weights=self.inception_weights,
            alexnet_weights=self.alexnet_weights,
            lpips_weights=self.lpips_weights,
            inception=self.inception,
            num_outs_per_domain=self.num_outs_per_domain,
            val_batch_size=self.val_batch_size,
            seed=self.seed,
            stats_cache=os.path.join(self.workdir, "eval", "fid_stats"),
        )

    def validate(self, num_replicas=1):
        """Raises UserError naming every problem a user can fix."""
        problems = (
            self._schedule_problems(num_replicas)
            + self._choice_problems()
            + self._init_problems()
            + self._file_problems()
        )
        if problems:
            raise UserError("; ".join(problems) + ".")

    def _schedule_problems(self, num_replicas):
        problems = []
        if self.batch_size < 1:
            problems.append(f"--batch_size={self.batch_size} must be >= 1")
        elif self.batch_size % num_replicas:
            problems.append(
                f"--batch_size={self.batch_size} is not divisible by {num_replicas} "
                "replicas; use a multiple of it"
            )
        for name in (
            "total_iters",
            "save_every",
            "sample_every",
            "print_every",
            "keep_checkpoints",
            "val_batch_size",
        ):
            if getattr(self, name) < 1:
                problems.append(f"--{name}={getattr(self, name)} must be >= 1")
        if self.fault_nan_step is not None and self.fault_nan_step < 1:
            problems.append(f"--fault_nan_step={self.fault_nan_step} must be >= 1")
        if self.eval_every < 0:
            problems.append(f"--eval_every={self.eval_every} must be >= 0 (0: no evaluation)")
        return problems

    def _choice_problems(self):
        problems = []
        if self.mixed_precision not in ("", "mixed_float16", "mixed_bfloat16"):
            problems.append(
                f"--mixed_precision={self.mixed_precision!r}: use mixed_float16, "
                "mixed_bfloat16 or nothing"
            )
        if not 0 <= self.randcrop_prob <= 1:
            problems.append(f"--randcrop_prob={self.randcrop_prob} must be in [0, 1]")
        if self.augment_on not in ("auto", "device", "host"):
            problems.append(f"--augment_on={self.augment_on!r}: use auto, device or host")
        if not 0 <= self.ema_beta < 1:
            problems.append(f"--ema_beta={self.ema_beta} must be in [0, 1)")
        if self.nan_policy not in NAN_POLICIES:
            problems.append(f"--nan_policy={self.nan_policy!r}: use stop or skip")
        return problems

    def _file_problems(self):
        problems = [] if self.workdir else ["--workdir is required"]
        if self.model.w_hpf > 0 and not self.wing_path:
            problems.append(
                f"w_hpf={self.model.w_hpf:g} needs the FAN face-landmark weights: pass "
                "--wing_path=expr/checkpoints/wing.ckpt (from the official StarGAN v2 repository: "
                "bash download.sh wing), or train without the high-pass path, --w_hpf=0"
            )
        elif self.model.w_hpf > 0 and not os.path.isfile(self.wing_path):
            problems.append(
                f"--wing_path={self.wing_path} is not a file (get wing.ckpt with the "
                "official repository's bash download.sh wing)"
            )
        if self.eval_every > 0:
            try:
                self.eval_config().validate()
            except UserError as e:
                problems.append(f"--eval_every={self.eval_every} needs: {str(e).rstrip('.')}")
        return problems

    def _init_problems(self):
        problems = []
        if self.d_warmup_iters < 0:
            problems.append(f"--d_warmup_iters={self.d_warmup_iters} must be >= 0")
        if not self.init_from:
            for name, value in (
                ("init_domain_map", self.init_domain_map),
                ("init_optimizer", self.init_optimizer),
                ("d_warmup_iters", self.d_warmup_iters),
            ):
                if value:
                    problems.append(
                        f"--{name} needs --init_from=DIR (it is about the model a run starts from)"
                    )
        elif self.init_domain_map:
            from stargan_tf.training.init_from import parse_domain_map

            try:
                parse_domain_map(self.init_domain_map)
            except UserError as e:
                problems.append(str(e).rstrip("."))
        return problems

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        model = dict(d.get("model", {}))
        if "decoder" in d:  # configs written before the decoder moved into the model config
            model.setdefault("decoder", d.pop("decoder"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"Unknown training config keys: {', '.join(unknown)}.")
        d["model"] = ModelConfig.from_dict(model)
        return cls(**d)


def resumable_fields():
    """The fields marked RESUMABLE: they may change when a run resumes."""
    return {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resumable")}


def differences(saved: TrainConfig, current: TrainConfig):
    """Fields that differ in a way that forbids resuming: ["--lr: 0.0001 (checkpoint) vs 0.001"]."""
    a, b = saved.to_dict(), current.to_dict()
    out = []
    for key in sorted(set(a["model"]) | set(b["model"])):
        if a["model"].get(key) != b["model"].get(key):
            out.append(f"{key}: {a['model'].get(key)!r} (checkpoint) vs {b['model'].get(key)!r}")
    for key in sorted(set(a) - {"model"} - resumable_fields()):
        if a.get(key) != b.get(key):
            out.append(f"--{key}: {a.get(key)!r} (checkpoint) vs {b.get(key)!r}")
    return out


def provenance():
    """Versions and the git commit of the code that trains, saved with the config."""
    import keras
    import tensorflow as tf

    import stargan_tf

    info = {
        "stargan_tf": stargan_tf.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }
    try:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(stargan_tf.__file__)))
        commit = subprocess.run(
            ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info
