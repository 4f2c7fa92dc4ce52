"""Fine-tuning (`--init_from`, issue 23): what a model directory gives a new run, the data's
domains matched to the model's by name (kept, copied, fresh, dropped), the discriminator
warm-up, a restart that resumes instead of loading again, and one line for every bad input.

Tiny networks and random batches; the converted official fixture (small64) for the D that a
`*_nets.ckpt` holds and the one a `*_nets_ema.ckpt` lacks.
"""

import json
import logging
import re
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

import stargan_tf
from stargan_tf import model_card
from cli_helpers import assert_usage_error, run_module
from support import TINY_FLAGS
from stargan_tf.config import ModelConfig
from stargan_tf.errors import UserError
from stargan_tf.training.config import TrainConfig
from stargan_tf.training.init_from import parse_domain_map, resolve_domains
from stargan_tf.training.trainer import Trainer

TINY = dict(img_size=32, style_dim=8, latent_dim=4, max_conv_dim=16, dim_in=8, w_hpf=0)
GFE = ("generator", "mapping_network", "style_encoder")
HEAD = re.compile(r"^(mapping_network|style_encoder)/unshared\.(\d+)\.(.*)$")


@pytest.fixture(autouse=True)
def absl_info_reaches_caplog():
    """The trainer logs through absl: its logger at INFO and propagating to the root logger
    (where caplog listens), whatever tests that ran earlier in this process set."""
    from absl import logging as absl_logging

    logger = logging.getLogger("absl")
    # (A library's logging.config.dictConfig may also have disabled existing loggers.)
    saved = (absl_logging.get_verbosity(), logger.level, logger.propagate, logger.disabled)
    absl_logging.set_verbosity(absl_logging.INFO)
    logger.setLevel(logging.INFO)
    logger.propagate, logger.disabled = True, False
    yield
    absl_logging.set_verbosity(saved[0])
    logger.setLevel(saved[1])
    logger.propagate, logger.disabled = saved[2], saved[3]


def batches(model, seed=0, batch_size=2):
    """Random training batches for `model` (images in [-1, 1], labels, latent codes)."""
    rng = np.random.default_rng(seed)
    s, n = model.img_size, model.num_domains

    def image():
        return rng.uniform(-1, 1, [batch_size, s, s, 3]).astype(np.float32)

    items = [
        {
            "x_real": image(),
            "x_ref": image(),
            "x_ref2": image(),
            "y_org": rng.integers(0, n, batch_size).astype(np.int32),
            "y_trg": rng.integers(0, n, batch_size).astype(np.int32),
            "z_trg": rng.standard_normal([batch_size, model.latent_dim]).astype(np.float32),
            "z_trg2": rng.standard_normal([batch_size, model.latent_dim]).astype(np.float32),
        }
        for _ in range(4)
    ]
    return tf.data.Dataset.from_tensor_slices(
        {k: np.stack([b[k] for b in items]) for k in items[0]}
    ).repeat()


def make_trainer(model, workdir, total_iters=1, seed=0, **init):
    config = TrainConfig(
        model=model,
        workdir=str(workdir),
        batch_size=2,
        total_iters=total_iters,
        save_every=1,
        sample_every=1000,
        print_every=1,
        **init,
    )
    import keras

    keras.utils.set_random_seed(seed)
    return Trainer(config, tf.distribute.OneDeviceStrategy("/cpu:0"), batches(model, seed))


def values(networks):
    return {k: v.numpy() for k, v in stargan_tf.official_variable_map(networks).items()}


def slot_values(trainer):
    """{"m"|"v": {key: value}} of the trainer's Adam moments, and {optimizer: iterations}."""
    out = {"m": {}, "v": {}}
    for name, opt in trainer.optimizers.items():
        net = getattr(trainer.nets, name)
        keys = {id(v): f"{name}/{k}" for k, v, _ in net.official_weights()}
        for var in net.trainable_variables:
            for slot in ("m", "v"):
                out[slot][keys[id(var)]] = opt.slots(var)[slot].numpy()
    return out, {name: int(opt.iterations.numpy()) for name, opt in trainer.optimizers.items()}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A training workdir of 3 domains after 2 iterations: trained, EMA and Adam state differ
    from their initial values (and the EMA from the trained)."""
    model = ModelConfig(**TINY, num_domains=3, domain_names=("cat", "dog", "wild"))
    workdir = tmp_path_factory.mktemp("source") / "run"
    trainer = make_trainer(model, workdir, total_iters=2)
    trainer.train()
    slots, iterations = slot_values(trainer)
    return {
        "workdir": workdir,
        "model": model,
        "nets": values(trainer.nets),
        "ema": values(trainer.nets_ema),
        "slots": slots,
        "iterations": iterations,
    }


def expected_source_key(key, new_names, old_names, domain_map):
    """The source key a head key of the new model starts from (None: fresh); by regex on the
    official names, independently of stargan_tf.networks.heads."""
    m = HEAD.match(key)
    if not m:
        return key
    name = new_names[int(m.group(2))]
    old = name if name in old_names else domain_map.get(name)
    return None if old is None else f"{m.group(1)}/unshared.{old_names.index(old)}.{m.group(3)}"


def check_mapped(got, source, new_names, old_names, domain_map, what):
    """Every weight of `got` equals the source weight it maps to; fresh heads equal none of the
    source's. Returns the number of weights checked."""

    def old_of(name):
        return name if name in old_names else domain_map.get(name)

    for key, value in got.items():
        head = HEAD.match(key)
        if head:
            src_key = expected_source_key(key, new_names, old_names, domain_map)
            if src_key is None:  # fresh: its kernels are none of the source's (biases start at 0)
                if not key.endswith(".weight"):
                    continue
                same_place = [
                    k
                    for k in source
                    if HEAD.match(k) and HEAD.match(k).group(1, 3) == head.group(1, 3)
                ]
                assert len(same_place) == len(old_names)
                assert not any(np.array_equal(value, source[k]) for k in same_place), (what, key)
            else:
                np.testing.assert_array_equal(value, source[src_key], err_msg=f"{what} {key}")
        elif source[key].shape != value.shape:  # the discriminator's logits: a column per domain
            assert key.startswith("discriminator/") and value.shape[-1] == len(new_names)
            for d, name in enumerate(new_names):
                column = value[..., d]
                if old_of(name) is None:
                    assert key.endswith(".bias") or not any(
                        np.array_equal(column, source[key][..., j]) for j in range(len(old_names))
                    ), (what, key, name)
                else:
                    np.testing.assert_array_equal(
                        column,
                        source[key][..., old_names.index(old_of(name))],
                        err_msg=f"{what} {key} {name}",
                    )
        else:
            np.testing.assert_array_equal(value, source[key], err_msg=f"{what} {key}")
    return len(got)


# The domain mapping on its own (no TensorFlow).


def test_domain_map_resolution():
    plan = resolve_domains(
        ("cat", "tabby", "wild", "zebra"),
        ("cat", "dog", "wild"),
        parse_domain_map("tabby=dog"),
        "DIR",
    )
    assert plan.sources == (0, 1, 2, None)
    assert plan.how == ("kept", "copied", "kept", "fresh")
    assert plan.dropped == ("dog",) and plan.shared_sources == ()
    assert plan.record()["tabby"] == {"from": "dog", "how": "copied"}
    # Renaming is a map entry; two new domains may share a source, and the plan says so.
    plan = resolve_domains(
        ("lion", "tabby", "tiger"),
        ("cat", "dog"),
        parse_domain_map(" tabby=cat, tiger=cat,lion=dog"),
    )
    assert plan.sources == (1, 0, 0) and plan.dropped == ("cat", "dog")
    assert plan.shared_sources == ("cat",)
    assert (
        "dropped (in the model, not in the data): cat (its heads copied to tabby, tiger), dog "
        "(its heads copied to lion)"
    ) in plan.lines()
    assert any("tabby and tiger start from the same heads (cat's)" in line for line in plan.lines())


@pytest.mark.parametrize(
    "text, data, model, fragments",
    [
        ("tabby", ("tabby",), ("cat",), ["'tabby' is not NEW=OLD"]),
        ("tabby=cat,tabby=dog", ("tabby",), ("cat", "dog"), ["names tabby twice"]),
        (
            "lion=cat",
            ("tabby",),
            ("cat",),
            ["lion is a domain neither of the data (tabby) nor of the model in DIR (cat)"],
        ),
        (
            "tabby=lion",
            ("tabby",),
            ("cat",),
            ["lion is neither a domain of the model in DIR (cat)"],
        ),
        ("tabby=dog", ("dog", "tabby"), ("cat",), ["dog is the data's, not a domain of the model"]),
        (
            "cat=dog",
            ("cat", "tabby"),
            ("cat", "dog"),
            ["cat is a domain of both the data and the model: it keeps its own heads", "(tabby)"],
        ),
        (
            "dog=cat",
            ("tabby",),
            ("cat", "dog"),
            ["dog is a domain of the model in DIR but not of the data (tabby)"],
        ),
    ],
)
def test_bad_domain_maps_are_one_line(text, data, model, fragments):
    with pytest.raises(UserError) as e:
        resolve_domains(data, model, parse_domain_map(text), "DIR")
    message = str(e.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# Loading everything, by domain.


@pytest.mark.training
def test_init_from_a_workdir_loads_everything_by_domain(source_run, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    new_names = ("cat", "tabby", "wild", "zebra")
    old_names = source_run["model"].domain_names
    domain_map = {"tabby": "dog"}
    model = ModelConfig(**TINY, num_domains=4, domain_names=new_names)
    # Another seed than the source's: fresh heads differ from every source head.
    trainer = make_trainer(
        model,
        tmp_path / "ft",
        total_iters=1,
        seed=5,
        init_from=str(source_run["workdir"]),
        init_domain_map="tabby=dog",
        init_optimizer=True,
    )
    nets, ema = values(trainer.nets), values(trainer.nets_ema)
    assert check_mapped(nets, source_run["nets"], new_names, old_names, domain_map, "nets") > 100
    # The EMA networks start as the source's EMA networks, not as copies of the trained ones.
    check_mapped(ema, source_run["ema"], new_names, old_names, domain_map, "nets_ema")
    assert any(not np.array_equal(ema[k], nets[k]) for k in ema if k.startswith("generator/"))
    for key in ema:  # zebra's fresh heads start the same in the EMA copies
        if HEAD.match(key) and HEAD.match(key).group(2) == "3":
            np.testing.assert_array_equal(ema[key], nets[key], err_msg=key)
    # The Adam moments and step counts of the source's optimizers (--init_optimizer).
    slots, iterations = slot_values(trainer)
    for slot in ("m", "v"):
        check_mapped(
            slots[slot], source_run["slots"][slot], new_names, old_names, domain_map, f"Adam {slot}"
        )
    assert iterations == source_run["iterations"]

    log = caplog.text
    assert "(a training run, ckpt-2, step 2)" in log
    assert "generator, mapping_network, style_encoder: its trained networks (nets)" in log
    assert "their EMA copies: its EMA networks (nets_ema)" in log
    assert "discriminator: its trained discriminator (nets)" in log
    assert "tabby: new, starts from a copy of dog's heads" in log
    assert "zebra: new, fresh heads" in log
    assert "dropped (in the model, not in the data): dog (its heads copied to tabby)" in log

    # The resolved mapping, for config.json and the model card (written when training starts:
    # see the restart test and the command-line test).
    init = trainer.init.record
    assert init["domains"] == {
        "cat": {"from": "cat", "how": "kept"},
        "tabby": {"from": "dog", "how": "copied"},
        "wild": {"from": "wild", "how": "kept"},
        "zebra": {"from": None, "how": "fresh"},
    }
    assert init["dropped"] == ["dog"] and init["discriminator"] == "nets"
    assert init["optimizers"] == "loaded" and init["step"] == 2
    card = model_card.card_text(
        {"model": model.to_dict(), "train": trainer.config.to_dict(), "init": init}
    )
    assert "- tabby: new, starts from a copy of dog's heads" in card
    assert f"Started from `{source_run['workdir']}` (a training run, ckpt-2, step 2)" in card


@pytest.mark.training
def test_a_restart_resumes_without_loading_again(source_run, tmp_path, caplog):
    model = ModelConfig(**TINY, num_domains=2, domain_names=("cat", "tabby"))
    source = tmp_path / "source"
    shutil.copytree(source_run["workdir"], source)
    init = dict(init_from=str(source), init_domain_map="tabby=dog")
    make_trainer(model, tmp_path / "ft", total_iters=1, **init).train()
    after_one = values(stargan_tf.load_networks(str(tmp_path / "ft"), ema=False))
    record = json.loads((tmp_path / "ft" / "config.json").read_text())["init"]
    # The source goes away: a restart must not need it.
    shutil.rmtree(source)
    caplog.set_level(logging.INFO)
    caplog.clear()  # the restart's logs only
    # total_iters=1: the restart finds its step done (it restores, rewrites config.json and the
    # card, and has nothing to train).
    trainer = make_trainer(model, tmp_path / "ft", total_iters=1, **init)
    assert "not loaded again" in caplog.text and "kept its heads" not in caplog.text
    assert trainer.restore() == 1
    restored = values(trainer.nets)
    for key, value in after_one.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)
    trainer.train()
    assert "Nothing to do: step 1" in caplog.text
    meta = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert meta["init"] == record  # the mapping of the run's start, kept
    assert (
        "tabby: new, starts from a copy of dog's heads"
        in (tmp_path / "ft" / "MODEL_CARD.md").read_text()
    )


# The converted official fixture: a *_nets.ckpt holds D, a *_nets_ema.ckpt does not.


def convert(checkpoint, out):
    status, stdout, stderr = run_module(
        "stargan_tf.convert",
        f"--checkpoint={checkpoint}",
        f"--out={out}",
        "--domain_names=cat,dog,wild",
        what=f"converting {checkpoint}",
    )
    assert status == 0, stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def converted(small64_dir, tmp_path_factory):
    """The fixture's nets.ckpt converted (trained networks and D), and a *_nets_ema.ckpt made from
    it (its G, F, E only, as the official releases hold) converted too."""
    import torch

    tmp = tmp_path_factory.mktemp("converted")
    state = torch.load(small64_dir / "nets.ckpt", map_location="cpu", weights_only=True)
    ema_file = tmp / "000010_nets_ema.ckpt"
    torch.save({k: v for k, v in state.items() if k != "discriminator"}, ema_file)
    return {
        "nets": convert(small64_dir / "nets.ckpt", tmp / "nets"),
        "nets_ema": convert(ema_file, tmp / "nets_ema"),
    }


def test_a_converted_nets_ckpt_starts_with_its_discriminator(
    small64_dir, converted, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    reference = values(
        stargan_tf.convert_official_checkpoint(
            str(small64_dir / "nets.ckpt"), domain_names=("cat", "dog", "wild")
        )
    )
    model = stargan_tf.load_networks(str(converted["nets"])).config
    trainer = make_trainer(model, tmp_path / "ft", init_from=str(converted["nets"]))
    nets = values(trainer.nets)
    d_keys = [k for k in reference if k.startswith("discriminator/")]
    assert len(d_keys) > 10
    for key in reference:  # D (and G, F, E) before the first step: the converted weights
        np.testing.assert_array_equal(nets[key], reference[key], err_msg=key)
    ema = values(trainer.nets_ema)  # no EMA networks in the file: copies of the trained ones
    for key, value in ema.items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)
    assert "discriminator: its trained discriminator (nets)" in caplog.text
    assert "copies of the trained ones (it holds no EMA networks)" in caplog.text


@pytest.mark.training
def test_a_converted_nets_ema_ckpt_starts_d_fresh_and_warms_it_up(converted, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    source = stargan_tf.load_networks(str(converted["nets_ema"]))
    model = source.config
    warmup = 2
    trainer = make_trainer(
        model,
        tmp_path / "ft",
        total_iters=warmup + 1,
        init_from=str(converted["nets_ema"]),
        d_warmup_iters=warmup,
    )
    assert "discriminator: starts fresh (He init): the directory holds none" in caplog.text
    assert (
        f"--d_warmup_iters={warmup}: D trains alone for the first {warmup} iterations"
        in caplog.text
    )
    assert "its EMA networks (nets_ema; it holds no trained ones)" in caplog.text
    start = values(trainer.nets)
    start_ema = values(trainer.nets_ema)
    for key, value in values(source).items():  # G, F, E and their EMA: the file's
        np.testing.assert_array_equal(start[key], value, err_msg=key)
        np.testing.assert_array_equal(start_ema[key], value, err_msg=key)
    iterator = trainer.make_iterator(0)
    for _ in range(warmup):
        trainer.run_iteration(iterator)
    warmed, warmed_ema = values(trainer.nets), values(trainer.nets_ema)
    for key, value in warmed.items():
        if key.startswith("discriminator/"):
            continue
        np.testing.assert_array_equal(value, start[key], err_msg=key)  # G, F, E frozen
        np.testing.assert_array_equal(warmed_ema[key], start_ema[key], err_msg=key)
    changed = [
        k
        for k in warmed
        if k.startswith("discriminator/") and not np.array_equal(warmed[k], start[k])
    ]
    assert len(changed) > 10  # D trained
    assert int(trainer.optimizers["generator"].iterations.numpy()) == 0
    trainer.run_iteration(iterator)  # the first full iteration
    after = values(trainer.nets)
    for name in GFE:
        moved = [
            k for k in after if k.startswith(name + "/") and not np.array_equal(after[k], warmed[k])
        ]
        assert moved, f"{name} did not train after the warm-up"


# The command line: the log block, config.json and the card; one line per bad input.


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Tiny model directories as the converter writes them: EMA networks only (ring, disc), and
    trained networks with D (ring)."""
    import keras

    tmp = tmp_path_factory.mktemp("tiny_sources")
    keras.utils.set_random_seed(1)
    ema_only = ModelConfig(**TINY, num_domains=2, domain_names=("disc", "ring"))
    stargan_tf.save_networks(
        stargan_tf.build_networks(ema_only, discriminator=False), str(tmp / "ema_only"), ema=True
    )
    with_d = ModelConfig(**TINY, num_domains=1, domain_names=("ring",))
    stargan_tf.save_networks(stargan_tf.build_networks(with_d), str(tmp / "with_d"), ema=False)
    other = ModelConfig(**{**TINY, "style_dim": 16}, num_domains=1, domain_names=("ring",))
    stargan_tf.save_networks(stargan_tf.build_networks(other), str(tmp / "other"), ema=False)
    return tmp


def train_cli(split, workdir, *flags):
    return run_module(
        "stargan_tf.train",
        f"--train_data={split}",
        f"--workdir={workdir}",
        *TINY_FLAGS,
        "--print_every=1",
        "--sample_every=100",
        *flags,
        what="a tiny fine-tuning run",
    )


@pytest.mark.training
def test_cli_fine_tunes_an_ema_only_model(split, sources, tmp_path):
    # The data: disc and square; the model: disc and ring. square starts from ring's heads.
    work = tmp_path / "ft"
    status, _, stderr = train_cli(
        split,
        work,
        f"--init_from={sources / 'ema_only'}",
        "--init_domain_map=square=ring",
        "--d_warmup_iters=1",
        "--total_iters=2",
    )
    assert status == 0, stderr[-3000:]
    assert "discriminator: starts fresh (He init)" in stderr
    assert "D trains alone for the first 1 iterations" in stderr
    assert "disc: kept its heads" in stderr
    assert "square: new, starts from a copy of ring's heads (--init_domain_map)" in stderr
    assert "dropped (in the model, not in the data): ring (its heads copied to square)" in stderr
    # The warm-up iteration logs D's losses only (and the λ_ds schedule); the next one all.
    assert re.search(
        r"step 1/2 .*D/latent/real=[\d.]+ D/latent/fake=[\d.]+ G/lambda_ds=[\d.]+$", stderr, re.M
    ), stderr[-3000:]
    assert re.search(r"step 2/2 .*G/latent/adv=", stderr)
    meta = json.loads((work / "config.json").read_text())
    assert meta["train"]["init_domain_map"] == "square=ring"
    assert meta["train"]["d_warmup_iters"] == 1
    assert meta["init"]["discriminator"] == "fresh" and meta["init"]["d_warmup_iters"] == 1
    assert meta["init"]["domains"]["square"] == {"from": "ring", "how": "copied"}
    card = (work / "MODEL_CARD.md").read_text()
    assert "discriminator: starts fresh" in card and "square: new, starts from a copy" in card


def test_warns_of_a_shared_source_and_a_needless_warm_up(sources, tmp_path, caplog):
    # Both warnings come when the run is set up (the command line shows them as absl's W lines:
    # see test_cli_fine_tunes_an_ema_only_model for the log block through the CLI).
    caplog.set_level(logging.INFO)
    model = ModelConfig(**TINY, num_domains=2, domain_names=("disc", "square"))
    trainer = make_trainer(
        model,
        tmp_path / "ft",
        init_from=str(sources / "with_d"),
        init_domain_map="disc=ring,square=ring",
        d_warmup_iters=5,
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "--d_warmup_iters=5 is ignored: the discriminator was loaded" in w for w in warnings
    ), warnings
    assert any(
        "disc and square start from the same heads (ring's): allowed" in w for w in warnings
    ), warnings
    assert trainer.d_warmup_iters == 0  # no warm-up: D was loaded
    assert trainer.init.record["d_warmup_iters"] == 0


def test_cli_bad_inputs(split, sources, tmp_path):
    work = tmp_path / "ft"
    not_a_model = tmp_path / "images"
    not_a_model.mkdir()
    assert_usage_error(
        train_cli(split, work, f"--init_from={not_a_model}"),
        f"--init_from={not_a_model}",
        "is not a stargan_tf model directory",
    )
    assert_usage_error(
        train_cli(split, work, f"--init_from={sources / 'other'}"),
        "holds a model of another config",
        "style_dim: 16 vs 8",
    )
    assert_usage_error(
        train_cli(
            split, work, f"--init_from={sources / 'ema_only'}", "--init_domain_map=disc=ring"
        ),
        "disc is a domain of both the data and the model",
        "it keeps its own heads",
    )
    assert not work.exists()  # nothing written


def test_bad_settings_are_one_line(sources, tmp_path):
    model = ModelConfig(**TINY, num_domains=2, domain_names=("disc", "square"))
    cases = [
        (
            dict(init_from=str(sources / "ema_only"), init_domain_map="cube=ring"),
            "cube is a domain neither of the data (disc, square) nor of the model",
        ),
        (
            dict(init_from=str(sources / "ema_only"), init_domain_map="square:ring"),
            "'square:ring' is not NEW=OLD",
        ),
        (
            dict(init_from=str(sources / "ema_only"), init_optimizer=True),
            "--init_optimizer: " + str(sources / "ema_only") + " holds no optimizer state",
        ),
        (dict(init_domain_map="square=ring"), "--init_domain_map needs --init_from=DIR"),
        (dict(d_warmup_iters=3), "--d_warmup_iters needs --init_from=DIR"),
        (
            dict(init_from=str(sources / "with_d"), d_warmup_iters=-1),
            "--d_warmup_iters=-1 must be >= 0",
        ),
        (dict(init_from=str(tmp_path / "missing")), "does not exist"),
    ]
    for init, fragment in cases:
        with pytest.raises(UserError) as e:
            make_trainer(model, tmp_path / "w", **init)
        assert fragment in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not (tmp_path / "w").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
