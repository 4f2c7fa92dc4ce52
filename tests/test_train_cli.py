"""`python -m stargan_tf.train` as a user runs it: a real run on a small TFRecord split, resume,
--help, every flag read, and one-line errors (exit status 2) for bad flags."""

import ast
import dataclasses
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_module
from support import REPO, TINY_FLAGS
from stargan_tf.training.config import TrainConfig

TINY = [*TINY_FLAGS, "--lambda_ds=2", "--ds_iter=10"]


def run_train(*flags, timeout=600):
    return run_module("stargan_tf.train", *flags, timeout=timeout)


@pytest.mark.training
def test_train_then_resume(split, tmp_path):
    work = tmp_path / "run"
    common = [
        f"--train_data={split}",
        f"--workdir={work}",
        *TINY,
        "--print_every=1",
        "--sample_every=2",
        "--save_every=2",
        "--deterministic",
    ]
    status, _, stderr = run_train(*common, "--total_iters=2")
    assert status == 0, stderr[-3000:]
    assert re.search(r"step 2/2 \| [\d.]+ img/s \| [\d.]+ s/step \| ETA ", stderr), stderr[-3000:]
    if "TF_NUM_INTRAOP_THREADS" not in os.environ:  # a small run on a CPU: set before the runtime
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert f"TensorFlow intra-op threads: {threads} " in stderr, stderr[-3000:]
    # (and .lock: the lock that keeps a second run out of a workdir in use)
    assert sorted(os.listdir(work)) == [
        ".lock",
        "MODEL_CARD.md",
        "checkpoints",
        "config.json",
        "logs",
        "samples",
    ]
    grid = Image.open(work / "samples" / "000002.png")
    assert grid.mode == "RGB" and grid.size[0] > 32 * 3
    meta = json.loads((work / "config.json").read_text())
    assert meta["model"]["domain_names"] == ["disc", "square"]
    assert meta["train"]["lambda_ds"] == 2 and meta["provenance"]["tensorflow"]

    # A restart with more iterations resumes at step 2 and keeps λ_ds decaying with the step;
    # the augmentation may move to the device (the same images: not a config change), here on
    # 2 replicas (MirroredStrategy over 2 logical CPUs: each replica augments its own batch).
    status, _, stderr = run_train(
        *common, "--total_iters=4", "--augment_on=device", "--cpu_devices=2"
    )
    assert status == 0, stderr[-3000:]
    assert "at step 2" in stderr and "Augmentation on the device." in stderr
    assert "Training on 2 replica(s)" in stderr
    assert "step 4/4" in stderr and "G/lambda_ds=1.400" in stderr  # 2 * (1 - 3/10) at step 3
    assert (work / "checkpoints" / "ckpt-4.index").exists()
    nets = stargan_tf.load_networks(str(work))  # the EMA networks of the run
    x = np.zeros([1, 32, 32, 3], np.float32)
    assert nets.generator(
        x, nets.mapping_network(np.zeros([1, 4], np.float32), np.array([1]))
    ).shape == (1, 32, 32, 3)

    # Another config in the same workdir is refused, naming the difference.
    assert_usage_error(
        run_train(*common, "--total_iters=6", "--lr=0.001"), "--lr", "0.0001", "0.001"
    )


def test_bad_flags(split, tmp_path):
    work = tmp_path / "w"
    assert_usage_error(
        run_train(
            f"--train_data={split}", f"--workdir={work}", *TINY, "--cpu_devices=2", "--batch_size=3"
        ),
        "--batch_size=3",
        "not divisible by 2 replicas",
    )
    assert_usage_error(
        run_train(f"--train_data={split}", f"--workdir={work}", "--img_size=100"),
        "--img_size=100",
        "power of two",
    )
    assert_usage_error(
        run_train(f"--train_data={tmp_path / 'missing'}", f"--workdir={work}"),
        "missing",
        "does not exist",
    )
    assert_usage_error(
        run_train(f"--train_data={split}", f"--workdir={work}", *TINY, "--num_domains=3"),
        "--num_domains=3",
        "2 domains",
    )
    assert_usage_error(
        run_train(f"--train_data={split}", f"--workdir={work}", "--batch_size=x"), "batch_size"
    )
    # The face recipe needs the FAN weights and says where they come from.
    assert_usage_error(
        run_train(
            f"--flagfile={REPO / 'configs' / 'celeba_hq256.cfg'}",
            f"--train_data={split}",
            f"--workdir={work}",
            "--img_size=32",
            "--dim_in=8",
            "--max_conv_dim=16",
        ),
        "--wing_path",
        "download.sh wing",
    )
    assert not work.exists()  # nothing half-written


def test_help_documents_and_main_reads_every_flag():
    status, stdout, stderr = run_train("--helpfull")
    assert status == 0
    source = (REPO / "stargan_tf" / "train.py").read_text()
    tree = ast.parse(source)
    defined = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "").startswith("DEFINE")
    }
    # Shared groups of stargan_tf/cli.py: the model flags (read by model_overrides) and the
    # evaluation flags.
    model = {
        "img_size",
        "style_dim",
        "latent_dim",
        "num_domains",
        "max_conv_dim",
        "dim_in",
        "w_hpf",
        "domain_names",
        "decoder",
    }
    evaluation = {
        "inception",
        "inception_weights",
        "alexnet_weights",
        "lpips_weights",
        "num_outs_per_domain",
    }
    assert len(defined) > 25
    for name in defined | model | evaluation:
        match = re.search(rf"--(\[no\])?{name}: (.+)", stdout)  # booleans show as --[no]name
        assert match and len(match.group(2)) > 10, f"--{name} is not documented"
    # The TrainConfig is derived from the flags (cli.config_from_flags): each field has its flag,
    # and every other flag is read by name.
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
    assert fields <= defined | evaluation, fields - defined - evaluation
    for name in defined - fields:
        assert f"FLAGS.{name}" in source, f"--{name} is defined but never read"
