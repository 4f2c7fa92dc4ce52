"""`--init_from=DIR`: starting a training run from a model directory, ours or a converted one.

What DIR holds is loaded, and one log block says what came from where:

- the trained networks (`nets`: G, F, E and D) when DIR has them: a training workdir, a converted
  official `*_nets.ckpt`; else G, F and E from its EMA networks (a converted `*_nets_ema.ckpt`,
  what the official repository releases) and D starts fresh;
- the EMA copies of G, F and E start as DIR's EMA networks when it has them, else as copies of
  the trained ones;
- the Adam moments (and step counts) of a training workdir with `init_optimizer` (default off: a
  new run's schedule is its own).

The data's domains (from its dataset.json) and the model's (its config.json) are matched by
name. A domain in both keeps its heads (mapping-network head, style-encoder head, discriminator
logit); a domain only in the data gets copies of the heads of the model domain that
`init_domain_map` ("new=old,...") names, or fresh ones; a domain only in the model is dropped;
renaming is a map entry ("tabby=cat"). The shared weights are loaded as they are
(`stargan_tf.networks.heads`). The resolved mapping goes into the log, the workdir's config.json
("init") and its model card; a restart of the run resumes from its own checkpoints and does not
load DIR again.
"""

import dataclasses
import os
import re
from typing import Optional, Tuple

import tensorflow as tf
from absl import logging

from stargan_tf import model_dir
from stargan_tf.model_dir import ModelDirError, nets_checkpoint, read_model_config
from stargan_tf.errors import UserError
from stargan_tf.networks import build_networks, official_variable_map
from stargan_tf.networks.heads import head_layout, transfer

# Fields of the model config that must agree (they set the shapes of the shared weights).
MATCHING_FIELDS = (
    "img_size",
    "style_dim",
    "latent_dim",
    "max_conv_dim",
    "w_hpf",
    "resolved_dim_in",
    "decoder",
)
GFE = ("generator", "mapping_network", "style_encoder")
OPTIMIZERS = ("discriminator", "generator", "mapping_network", "style_encoder")
_NAME = re.compile(r"^[^=,\s]+$")


# The domain mapping (no TensorFlow needed).


def parse_domain_map(text):
    """ "new=old,new2=old2" -> [("new", "old"), ("new2", "old2")] (UserError on bad syntax)."""
    pairs, seen = [], set()
    for entry in (e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        new, eq, old = (part.strip() for part in entry.partition("="))
        if not eq or not _NAME.match(new) or not _NAME.match(old):
            raise UserError(
                f"--init_domain_map: {entry!r} is not NEW=OLD (a domain of the data = "
                "a domain of the model it starts from), e.g. "
                "--init_domain_map=tabby=cat."
            )
        if new in seen:
            raise UserError(f"--init_domain_map names {new} twice; give each new domain one entry.")
        seen.add(new)
        pairs.append((new, old))
    return pairs


@dataclasses.dataclass(frozen=True)
class DomainPlan:
    """How the data's domains start.

    Attributes:
      data: the data's domain names (the new model's, in id order).
      model: the source model's domain names.
      sources: per data domain, the index of the model domain whose heads it starts from, or None
        (fresh heads).
      how: per data domain: "kept" (same name in the model), "copied" (a map entry) or "fresh".
      dropped: the model's domains not in the data.
      shared_sources: model domains that two or more new domains start from (allowed).
    """

    data: Tuple[str, ...]
    model: Tuple[str, ...]
    sources: Tuple[Optional[int], ...]
    how: Tuple[str, ...]
    dropped: Tuple[str, ...]
    shared_sources: Tuple[str, ...]

    def lines(self):
        """The mapping in words, one line per data domain and one for the dropped ones."""
        out = []
        for name, j, how in zip(self.data, self.sources, self.how):
            if how == "kept":
                out.append(f"{name}: kept its heads")
            elif how == "copied":
                out.append(
                    f"{name}: new, starts from a copy of {self.model[j]}'s heads "
                    "(--init_domain_map)"
                )
            else:
                out.append(
                    f"{name}: new, fresh heads (not in the model; --init_domain_map="
                    f"{name}=OLD would copy a model domain's)"
                )
        if self.dropped:
            dropped = []
            for old in self.dropped:
                heirs = [
                    n
                    for n, j in zip(self.data, self.sources)
                    if j is not None and self.model[j] == old
                ]
                copied = f" (its heads copied to {', '.join(heirs)})" if heirs else ""
                dropped.append(old + copied)
            out.append(f"dropped (in the model, not in the data): {', '.join(dropped)}")
        for old in self.shared_sources:
            both = [
                n for n, j in zip(self.data, self.sources) if j is not None and self.model[j] == old
            ]
            out.append(
                f"{' and '.join(both)} start from the same heads ({old}'s): allowed, "
                "they part in training"
            )
        return out

    def record(self):
        """The mapping for config.json: {data domain: {"from": model domain or None, "how"}}."""
        return {
            name: {"from": None if j is None else self.model[j], "how": how}
            for name, j, how in zip(self.data, self.sources, self.how)
        }


def resolve_domains(data_names, model_names, domain_map, directory="the model"):
    """Matches the data's domains to the model's by name (see the module docstring).

    Args:
      data_names: the data's domains.
      model_names: the model's domains.
      domain_map: [(new, old)] from `parse_domain_map`.
      directory: the model directory, for the messages.

    Raises:
      UserError: an entry names a domain that is in neither list, maps a domain the model has
        (it keeps its own heads), or starts from a domain the model does not have.
    """
    data, model = tuple(data_names), tuple(model_names)
    listed = f"the data ({', '.join(data)}) nor of the model in {directory} ({', '.join(model)})"
    mapped = {}
    for new, old in domain_map:
        if new not in data:
            where = (
                f"{new} is a domain of the model in {directory} but not of the data "
                f"({', '.join(data)}); the left side names a domain of the data"
                if new in model
                else f"{new} is a domain neither of {listed}"
            )
            raise UserError(f"--init_domain_map={new}={old}: {where}.")
        if new in model:
            raise UserError(
                f"--init_domain_map={new}={old}: {new} is a domain of both the data "
                f"and the model: it keeps its own heads; map only the data's new "
                f"domains ({', '.join(n for n in data if n not in model) or 'none'})."
            )
        if old not in model:
            where = "the data's, not" if old in data else "neither"
            raise UserError(
                f"--init_domain_map={new}={old}: {old} is {where} a domain of the "
                f"model in {directory} ({', '.join(model)}); the right side names "
                "the model domain whose heads it starts from."
            )
        mapped[new] = model.index(old)
    sources, how = [], []
    for name in data:
        if name in model:
            sources.append(model.index(name))
            how.append("kept")
        elif name in mapped:
            sources.append(mapped[name])
            how.append("copied")
        else:
            sources.append(None)
            how.append("fresh")
    counts = {}
    for _, old in domain_map:
        counts[old] = counts.get(old, 0) + 1
    shared = tuple(old for old, n in counts.items() if n > 1)  # (a kept domain's are copied too)
    dropped = tuple(n for n in model if n not in data)
    return DomainPlan(data, model, tuple(sources), tuple(how), dropped, shared)


# The source directory.


@dataclasses.dataclass(frozen=True)
class Source:
    """What a model directory holds: its config, latest checkpoint and the parts in it."""

    directory: str
    config: object  # ModelConfig
    meta: dict
    path: str  # the checkpoint prefix
    step: int
    has_trained: bool  # nets: G, F, E
    has_discriminator: bool  # nets/discriminator
    has_ema: bool  # nets_ema
    has_optimizers: bool

    def kind(self):
        source = self.meta.get("source") or {}
        if "train" in self.meta:
            return "a training run"
        if isinstance(source, dict) and source.get("official_checkpoint"):
            return f"converted from {os.path.basename(source['official_checkpoint'])}"
        return "a model directory"


def read_source(directory):
    """Inspects `directory` (UserError naming --init_from when it is not a usable model dir)."""
    try:
        config = read_model_config(directory)
    except ModelDirError as e:
        raise UserError(f"--init_from={directory}: {e}") from None
    meta = model_dir.read_meta(directory)
    ckpt_dir = model_dir.checkpoint_dir(directory)
    path = model_dir.checkpoint_path(directory)
    if path is None:
        raise UserError(
            f"--init_from={directory}: {ckpt_dir} holds no checkpoint (a model "
            "directory has config.json and checkpoints/; convert or train one)."
        )
    try:
        variables = dict(tf.train.list_variables(path))
        names = {tuple(name.split("/")[:2]) for name in variables}
        step_key = "step/.ATTRIBUTES/VARIABLE_VALUE"
        step = (
            int(tf.train.load_checkpoint(path).get_tensor(step_key)) if step_key in variables else 0
        )
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"--init_from={directory}: {path} does not load ({e}).") from None
    has = {name[0] for name in names}
    return Source(
        directory,
        config,
        meta,
        path,
        step,
        has_trained="nets" in has,
        has_discriminator=("nets", "discriminator") in names,
        has_ema="nets_ema" in has,
        has_optimizers="optimizers" in has,
    )


def check_compatible(source, model):
    """UserError naming every difference that changes the shape of a shared weight."""
    diff = [
        f"{f}: {getattr(source.config, f)} vs {getattr(model, f)}"
        for f in MATCHING_FIELDS
        if getattr(source.config, f) != getattr(model, f)
    ]
    if diff:
        raise UserError(
            f"--init_from={source.directory} holds a model of another config ({'; '.join(diff)})."
        )


# Loading.


class InitFrom:
    """The `--init_from` of one training run: checked when made, applied by `apply`.

    Args:
      config: the TrainConfig (init_from, init_domain_map, init_optimizer, d_warmup_iters).
      resuming: the workdir holds checkpoints of this run: nothing is loaded from init_from (the
        run resumes), and `saved_record` (config.json's "init") says how it started.
      saved_record: the "init" entry of the workdir's config.json, when resuming.
    """

    def __init__(self, config, resuming=False, saved_record=None):
        self.config = config
        self.directory = config.init_from
        self.applied = False
        self.record = saved_record
        self.source = self.plan = None
        if resuming:
            logging.info(
                "--init_from=%s: not loaded again: the workdir holds this run's "
                "checkpoints, which it resumes from.",
                self.directory,
            )
            return
        self._check()

    def _check(self):
        c = self.config
        self.source = read_source(self.directory)
        check_compatible(self.source, c.model)
        self.plan = resolve_domains(
            c.model.domain_names,
            self.source.config.domain_names,
            parse_domain_map(c.init_domain_map),
            self.directory,
        )
        if c.init_optimizer and not self.source.has_optimizers:
            raise UserError(
                f"--init_optimizer: {self.directory} holds no optimizer state ("
                f"{self.source.kind()}; only training workdirs have it); leave the "
                "flag out."
            )

    @property
    def d_warmup_iters(self):
        """The D-only iterations this run starts with (0 when D was loaded)."""
        if self.record is not None:
            return int(self.record.get("d_warmup_iters", 0))
        return 0

    def apply(self, nets, nets_ema, optimizers, optimizer_node):
        """Loads the source into the trainer's networks (and optimizers); logs the block.

        Args:
          nets, nets_ema: the trainer's Networks (built for the data's domains).
          optimizers: {network name: optimizer} of the trainer.
          optimizer_node: (optimizer, network) -> the tf.train.Checkpoint node the trainer saves
            that optimizer as (so that the source's are read the same way).
        """
        if self.source is None:  # resuming found no checkpoint after all: start as new
            self._check()
        c, src = self.config, self.source
        trained, ema, src_optimizers = self._read_source(optimizer_node)
        counts = self._load_weights(nets, nets_ema, trained, ema)
        if src_optimizers:
            self._load_optimizers(src_optimizers, trained, optimizers, nets, self.plan.sources)
        d_loaded = src.has_discriminator
        warmup = c.d_warmup_iters if not d_loaded else 0
        self.record = {
            "from": os.path.abspath(self.directory),
            "checkpoint": os.path.basename(src.path),
            "step": src.step,
            "kind": src.kind(),
            "networks": {name: ("nets" if trained is not None else "nets_ema") for name in GFE},
            "ema": "nets_ema" if ema is not None else "copies of nets",
            "discriminator": "nets" if d_loaded else "fresh",
            "optimizers": "loaded" if src_optimizers else "fresh",
            "domains": self.plan.record(),
            "dropped": list(self.plan.dropped),
            "d_warmup_iters": warmup,
        }
        self.record["summary"] = self._summary(
            trained is not None, ema is not None, d_loaded, bool(src_optimizers), warmup, counts
        )
        logging.info("%s", "\n  ".join(self.record["summary"]))
        self._warn(d_loaded)
        self.applied = True

    def _read_source(self, optimizer_node):
        """The source's trained and EMA networks (None where it has none) and, with
        --init_optimizer, its optimizers, read from its checkpoint."""
        c, src = self.config, self.source
        trained = (
            build_networks(src.config, discriminator=src.has_discriminator)
            if src.has_trained
            else None
        )
        ema = build_networks(src.config, discriminator=False) if src.has_ema else None
        nodes = {}
        if trained is not None:
            nodes["nets"] = nets_checkpoint(trained)
        if ema is not None:
            nodes["nets_ema"] = nets_checkpoint(ema)
        src_optimizers = {}
        if c.init_optimizer:
            from stargan_tf.training.optimizer import AdamL2

            for name in OPTIMIZERS:
                net = getattr(trained, name)
                src_optimizers[name] = AdamL2()
                src_optimizers[name].build(net.trainable_variables)
            nodes["optimizers"] = tf.train.Checkpoint(
                **{
                    name: optimizer_node(opt, getattr(trained, name))
                    for name, opt in src_optimizers.items()
                }
            )
        # expect_partial: the file may hold more (the step, the FAN, a loss scale).
        tf.train.Checkpoint(**nodes).read(
            src.path
        ).assert_existing_objects_matched().expect_partial()
        return trained, ema, src_optimizers

    def _load_weights(self, nets, nets_ema, trained, ema):
        """Copies the source's weights into the trainer's networks by the domain plan; returns
        the counts of variables copied per kind."""
        sources = self.plan.sources
        dst_layout = head_layout(nets)
        counts = {}

        def load(dst, src_nets, names):
            values = {k: v.numpy() for k, v in official_variable_map(src_nets).items()}
            dst_vars = {
                k: v for k, v in official_variable_map(dst).items() if k.split("/")[0] in names
            }
            n = transfer(values, dst_vars, head_layout(src_nets), dst_layout, sources)
            for k, v in n.items():
                counts[k] = counts.get(k, 0) + v

        load(nets, trained if trained is not None else ema, GFE)
        if self.source.has_discriminator:
            load(nets, trained, ("discriminator",))
        # The EMA copies: first the trained networks as loaded (so that fresh heads start equal
        # in both), then the source's EMA networks over them.
        trained_now = official_variable_map(nets)
        for key, var in official_variable_map(nets_ema).items():
            var.assign(trained_now[key])
        load(nets_ema, ema if ema is not None else trained, GFE)
        return counts

    def _warn(self, d_loaded):
        c = self.config
        if d_loaded and c.d_warmup_iters:
            logging.warning(
                "--d_warmup_iters=%d is ignored: the discriminator was loaded from %s "
                "(the warm-up is for a discriminator that starts fresh).",
                c.d_warmup_iters,
                self.directory,
            )
        for line in self.plan.lines():
            if "start from the same heads" in line:
                logging.warning("--init_domain_map: %s.", line)
        if all(h == "fresh" for h in self.plan.how):
            logging.warning(
                "--init_from=%s: no domain of the data (%s) is in the model (%s) or "
                "mapped to one: every head starts fresh; --init_domain_map=NEW=OLD "
                "copies a model domain's heads.",
                self.directory,
                ", ".join(self.plan.data),
                ", ".join(self.plan.model),
            )

    def _load_optimizers(self, src_optimizers, trained, optimizers, nets, sources):
        src_layout, dst_layout = head_layout(trained), head_layout(nets)
        for name, src_opt in src_optimizers.items():
            opt = optimizers[name]
            inner = getattr(opt, "inner_optimizer", opt)
            src_net = getattr(trained, name)
            src_keys = {id(v): f"{name}/{k}" for k, v, _ in src_net.official_weights()}
            dst_keys = {id(v): f"{name}/{k}" for k, v, _ in getattr(nets, name).official_weights()}
            for slot in ("m", "v"):
                values = {
                    src_keys[id(v)]: src_opt.slots(v)[slot].numpy()
                    for v in getattr(trained, name).trainable_variables
                }
                dst = {
                    dst_keys[id(v)]: inner.slots(v)[slot]
                    for v in getattr(nets, name).trainable_variables
                }
                transfer(values, dst, src_layout, dst_layout, sources)
            inner.iterations.assign(src_opt.iterations)

    def _summary(self, has_trained, has_ema, d_loaded, optimizers_loaded, warmup, counts):
        src = self.source
        lines = [
            f"--init_from={self.directory} ({src.kind()}, {os.path.basename(src.path)}, "
            f"step {src.step}):"
        ]
        if has_trained:
            lines.append("generator, mapping_network, style_encoder: its trained networks (nets)")
        else:
            lines.append(
                "generator, mapping_network, style_encoder: its EMA networks (nets_ema; "
                "it holds no trained ones)"
            )
        lines.append(
            "their EMA copies: "
            + (
                "its EMA networks (nets_ema)"
                if has_ema
                else "copies of the trained ones (it holds no EMA networks)"
            )
        )
        if d_loaded:
            lines.append("discriminator: its trained discriminator (nets)")
        else:
            lines.append(
                "discriminator: starts fresh (He init): the directory holds none (official "
                "*_nets_ema.ckpt files have none); "
                + (
                    f"--d_warmup_iters={warmup}: D trains alone for the first {warmup} iterations"
                    if warmup
                    else "--d_warmup_iters=N would train it alone first (README, Fine-tuning)"
                )
            )
        lines.append(
            "Adam moments: "
            + (
                "its optimizers' (--init_optimizer)"
                if optimizers_loaded
                else "fresh (--init_optimizer is off: this run's schedule is its own)"
            )
        )
        lines.append(
            f"shared weights: {counts.get('shared', 0)} variables loaded as they are; "
            f"head variables: {counts.get('heads', 0)} loaded by domain, "
            f"{counts.get('kept', 0)} fresh"
        )
        lines.append("domains (data <- model):")
        lines += [f"  {line}" for line in self.plan.lines()]
        return lines


def saved_init_record(workdir):
    """The "init" entry of a workdir's config.json, or None."""
    try:
        return model_dir.read_meta(workdir).get("init")
    except (OSError, ValueError):
        return None
