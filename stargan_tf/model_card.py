"""MODEL_CARD.md: the short card that travels with a model's weights.

Every model directory (converted by stargan-tf-convert or `save_networks`, or a training
workdir) and every export carries one: what the model is, its domains, image size and decoder,
how it was made (converted: the source file's name and SHA-256; trained: the config and steps;
exported: from which directory and step) and the license of its weights (CC BY-NC 4.0 with
attribution for weights converted from the official files; the code is MIT).

The card is written from the model's config.json contents (no TensorFlow needed).
"""

import hashlib
import json
import os

from stargan_tf.files import write_text_atomic

CARD_FILE = "MODEL_CARD.md"
OFFICIAL_REPO = "https://github.com/clovaai/stargan-v2"
CC_BY_NC = "https://creativecommons.org/licenses/by-nc/4.0/"
ATTRIBUTION = (
    "StarGAN v2: Diverse Image Synthesis for Multiple Domains, Yunjey Choi, Youngjung Uh, "
    f"Jaejun Yoo and Jung-Woo Ha (CVPR 2020), Clova AI Research, NAVER Corp. ({OFFICIAL_REPO})"
)
OFFICIAL_LICENSE = (
    "The weights are converted from the official StarGAN v2 checkpoints of "
    f"{ATTRIBUTION}, which are licensed under Creative Commons Attribution-NonCommercial 4.0 "
    f"International (CC BY-NC 4.0, {CC_BY_NC}). This converted copy (and anything trained or "
    "exported from it) stays under CC BY-NC 4.0: non-commercial use only, with this attribution."
)
CODE_LICENSE = "The stargan_tf code that wrote this model is MIT-licensed."
# Training settings the card lists (the rest is in config.json).
TRAIN_KEYS = (
    "total_iters",
    "batch_size",
    "lr",
    "f_lr",
    "lambda_ds",
    "lambda_reg",
    "lambda_sty",
    "lambda_cyc",
    "ema_beta",
    "seed",
    "mixed_precision",
)


def file_sha256(path):
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_official(meta):
    source = meta.get("source") or {}
    return isinstance(source, dict) and bool(source.get("official_checkpoint"))


def _init_from_official(train):
    """Whether a training run started from a model directory converted from official weights."""
    init_from = train.get("init_from") or ""
    path = os.path.join(init_from, "config.json") if init_from else ""
    if not path or not os.path.isfile(path):
        return None  # unknown: not given, or not readable here
    try:
        with open(path) as f:
            return _is_official(json.load(f))
    except (OSError, ValueError):
        return None


def _model_rows(model):
    w_hpf = model.get("w_hpf", 0)
    decoder = model.get("decoder", "adain")
    return [
        "| | |",
        "|---|---|",
        f"| Domains | {', '.join(model.get('domain_names') or [])} "
        f"({model.get('num_domains')}; ids in this order) |",
        f"| Image size | {model.get('img_size')} x {model.get('img_size')} RGB |",
        f"| Decoder | {decoder} ("
        + ("AdaIN, the paper's" if decoder == "adain" else "StyleGAN2 modulated convolutions")
        + ") |",
        f"| style_dim, latent_dim | {model.get('style_dim')}, {model.get('latent_dim')} |",
        f"| max_conv_dim, dim_in | {model.get('max_conv_dim')}, "
        + (f"{model['dim_in']}" if model.get("dim_in") else "the official 2**14 // img_size")
        + " |",
        f"| w_hpf | {w_hpf:g} ("
        + ("face masks from the FAN" if w_hpf > 0 else "no face masks")
        + ") |",
    ]


def _init_lines(init):
    """What a fine-tuned run loaded from its --init_from (config.json's "init"), as a list."""
    if not init or not init.get("summary"):
        return []
    head, *items = init["summary"]
    out = [
        "",
        f"Started from `{init.get('from')}` ({init.get('kind')}, {init.get('checkpoint')}, "
        f"step {init.get('step')}), {head.split(' ', 1)[0]}:",
        "",
    ]
    for item in items:
        depth = (len(item) - len(item.lstrip())) // 2
        out.append("  " * depth + "- " + item.strip())
    return out


def _how_made(meta, official, train, source, exported_from):
    """The card's "How it was made" lines: converted, trained or saved; software; export."""
    lines = []
    if official:
        step = source.get("step")
        lines.append(
            f"Converted with stargan-tf-convert from the official PyTorch checkpoint "
            f"`{os.path.basename(source['official_checkpoint'])}` (SHA-256 "
            f"`{source.get('sha256', 'not recorded')}`)"
            + (f", step {step}" if step is not None else "")
            + "."
        )
    elif train:
        settings = ", ".join(
            f"{k} {train[k]}" for k in TRAIN_KEYS if train.get(k) not in (None, "")
        )
        lines.append(
            f"Trained with stargan-tf-train on `{train.get('train_data')}` for "
            f"{train.get('total_iters')} iterations ({settings}); every setting is in "
            "config.json, the steps reached in the checkpoints"
            + (f"; initialised from `{train['init_from']}`" if train.get("init_from") else "")
            + "."
        )
        lines += _init_lines(meta.get("init"))
    else:
        lines.append(
            "Written by `stargan_tf.save_networks`"
            + (f" (source: {source})" if source else "")
            + "."
        )
    provenance = meta.get("provenance") or {}
    if provenance:
        lines.append(
            "Software: " + ", ".join(f"{k} {v}" for k, v in sorted(provenance.items())) + "."
        )
    if exported_from:
        lines += [
            "",
            f"Exported with stargan-tf-export from `{exported_from['directory']}`, "
            f"step {exported_from.get('step')}, "
            + (
                "the EMA networks."
                if exported_from.get("ema", True)
                else "the trained networks (the checkpoint holds no EMA copies)."
            ),
        ]
    return lines


def _license_lines(official, train):
    """The license of the weights: the official terms, or set by whoever trained them."""
    lines = []
    if official:
        lines.append(OFFICIAL_LICENSE)
    elif train:
        from_official = _init_from_official(train)
        if from_official:
            lines.append(
                "Initialised from weights converted from the official checkpoints: "
                + OFFICIAL_LICENSE
            )
        else:
            lines.append(
                "Trained with stargan_tf; the terms of these weights are set by whoever trained "
                "them and by the training data's license."
                + (
                    " If the model it was initialised from holds the official weights, CC BY-NC "
                    f"4.0 applies ({CC_BY_NC}), with attribution to {ATTRIBUTION}."
                    if from_official is None and train.get("init_from")
                    else ""
                )
            )
    else:
        lines.append("The terms of these weights are set by whoever made them.")
    return lines


def card_text(meta, exported_from=None):
    """The card of a model whose config.json holds `meta`, as Markdown.

    Args:
      meta: config.json's contents: "model", and "source" (converted) or "train" (trained).
      exported_from: for an export, {"directory": ..., "step": ..., "ema": ...}; else None.
    """
    model = meta.get("model", {})
    train = meta.get("train")
    source = meta.get("source") or {}
    official = _is_official(meta)
    lines = [
        "# Model card: StarGAN v2 (stargan_tf)",
        "",
        "StarGAN v2 (Choi et al., CVPR 2020) networks in TensorFlow 2 / Keras 3: a generator "
        "that translates an image into any of the domains below, in many styles, guided by "
        "a random latent code (mapping network) or by a reference image (style encoder). "
        + (
            "A TF Serving SavedModel (signatures: stargan_tf/inference/serving.py)."
            if exported_from
            else "Load it with `stargan_tf.load_networks(DIR)`."
        ),
        "",
        *_model_rows(model),
        "",
        "## How it was made",
        "",
    ]
    lines += _how_made(meta, official, train, source, exported_from)
    lines += ["", "## License", ""]
    lines += _license_lines(official, train)
    lines += ["", CODE_LICENSE, ""]
    return "\n".join(lines)


def write_card(directory, meta, exported_from=None):
    """Writes `directory`/MODEL_CARD.md (atomically) for a model with config.json `meta`."""
    path = os.path.join(directory, CARD_FILE)
    write_text_atomic(path, card_text(meta, exported_from))
    return path
