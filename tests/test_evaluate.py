"""`python -m stargan_tf.evaluate` and the official protocol on a tiny 2-domain model: every task
of both modes in the JSON and in TensorBoard, the real statistics cached, one-line errors.

The Inception and AlexNet weights are the random ones of the eval_reference fixture (in the
published formats); the numbers are not meaningful, the plumbing is what is tested here, and the
networks' parity in tests/test_metrics.py.
"""

import dataclasses
import glob
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from cli_helpers import assert_usage_error, run_module
from support import fixture_dir
from inference_helpers import TINY, make_model_dir, write_domain_folder
from stargan_tf.errors import UserError

DOMAINS = ("cat", "dog")
TINY2 = dataclasses.replace(TINY, num_domains=2, domain_names=DOMAINS)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    model_dir, _ = make_model_dir(root / "model", TINY2)
    rng = np.random.default_rng(3)
    # Training images of mixed sizes (a real PIL downscale to 32 px); 3 validation images per
    # domain in batches of 2: a full and a partial batch per task.
    write_domain_folder(str(root / "train"), 3, rng, DOMAINS)
    write_domain_folder(str(root / "val"), 3, rng, DOMAINS)
    weights = fixture_dir("eval_reference")
    flags = [
        "--train_data",
        root / "train",
        "--val_data",
        root / "val",
        "--inception_weights",
        weights / "torchvision_inception_v3_random.pth",
        "--alexnet_weights",
        weights / "torchvision_alexnet_random.pth",
        "--lpips_weights",
        weights / "lpips_weights_random.ckpt",
        "--stats_cache",
        root / "cache",
    ]
    return root, model_dir, flags


def test_cli_writes_every_task_of_both_modes(setup):
    root, model_dir, flags = setup
    out = root / "out"
    status, stdout, stderr = run_module(
        "stargan_tf.evaluate",
        "--checkpoint",
        model_dir,
        *flags,
        "--mode=both",
        "--inception=official",
        "--num_outs_per_domain=2",
        "--val_batch_size=2",
        "--out",
        out,
        "--save_images",
    )
    assert status == 0, stderr[-3000:]
    path = out / "metrics_000007.json"  # The checkpoint's step.
    assert str(path) in stdout
    results = json.loads(path.read_text())
    tasks = ["dog2cat", "cat2dog"]  # By target domain, then source: the official order.
    expected = [
        f"{metric}_{mode}/{task}"
        for mode in ("latent", "reference")
        for metric in ("FID", "LPIPS")
        for task in tasks + ["mean"]
    ]
    assert list(results) == expected
    for name, value in results.items():
        assert math.isfinite(value) and value > 0, name
    for mode in ("latent", "reference"):
        for metric in ("FID", "LPIPS"):
            values = [results[f"{metric}_{mode}/{t}"] for t in tasks]
            assert results[f"{metric}_{mode}/mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert "24/24" in stderr  # The progress bar: 2 modes x 2 tasks x 3 sources x 2 outputs.
    # The outputs as the official code names them: <source index>_<output index>.png.
    pngs = sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "*" / "*" / "*.png")))
    assert len(pngs) == 24 and "latent/cat2dog/0003_02.png" in pngs
    # One cache file per target domain.
    assert len(os.listdir(root / "cache")) == 2
    # The same numbers as TensorBoard scalars.
    scalars = {}
    for event_file in glob.glob(str(out / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for v in event.summary.value:
                scalars[v.tag] = float(tf.make_ndarray(v.tensor))
                assert event.step == 7
    assert scalars.keys() == results.keys()
    assert all(scalars[k] == pytest.approx(results[k], rel=1e-6) for k in results)


def test_cli_usage_errors(setup):
    root, model_dir, flags = setup
    assert_usage_error(
        run_module(
            "stargan_tf.evaluate",
            "--checkpoint",
            model_dir,
            *flags,
            "--num_outs_per_domain=1",
            "--out",
            root / "bad",
        ),
        "--num_outs_per_domain=1 must be >= 2",
    )
    missing = [f if "lpips_weights_random" not in str(f) else root / "nope.ckpt" for f in flags]
    assert_usage_error(
        run_module(
            "stargan_tf.evaluate", "--checkpoint", model_dir, *missing, "--out", root / "bad"
        ),
        "--lpips_weights=",
        "nope.ckpt is not a file",
        "README",
    )
    hpf_dir, _ = make_model_dir(root / "hpf", dataclasses.replace(TINY2, w_hpf=1.0))
    assert_usage_error(
        run_module("stargan_tf.evaluate", "--checkpoint", hpf_dir, *flags, "--out", root / "bad"),
        "w_hpf=1",
        "FAN",
    )
    assert not (root / "bad").exists()


def test_trainer_evaluation_writes_json_and_scalars(setup):
    from stargan_tf.data import folders, pipeline
    from stargan_tf.training.config import TrainConfig
    from stargan_tf.training.trainer import Trainer

    root, _, flags = setup
    weights = dict(zip(flags[4::2], flags[5::2]))  # "--inception_weights" -> path, ...
    model = dataclasses.replace(TINY2, dim_in=8, max_conv_dim=16)
    config = TrainConfig(
        model=model,
        train_data=str(root / "train"),
        val_data=str(root / "val"),
        workdir=str(root / "work"),
        batch_size=2,
        val_batch_size=2,
        total_iters=2,
        save_every=2,
        sample_every=100,
        print_every=1,
        eval_every=2,
        num_outs_per_domain=2,
        inception_weights=str(weights["--inception_weights"]),
        alexnet_weights=str(weights["--alexnet_weights"]),
        lpips_weights=str(weights["--lpips_weights"]),
    )
    with pytest.raises(UserError, match="--eval_every=2 needs: --lpips_weights is required"):
        dataclasses.replace(config, lpips_weights="").validate()
    source = folders.image_folder_source(str(root / "train"))
    dataset = pipeline.train_dataset(source, 32, 2, model.latent_dim, seed=0)
    trainer = Trainer(config, tf.distribute.OneDeviceStrategy("/cpu:0"), dataset)
    # What the loop calls at steps that are multiples of eval_every (training steps themselves
    # are tested elsewhere; tracing one costs more than this whole test).
    trainer.evaluate(2)
    work = root / "work"
    assert sorted(os.listdir(work / "eval")) == ["fid_stats", "metrics_000002.json"]
    results = json.loads((work / "eval" / "metrics_000002.json").read_text())
    assert len(results) == 12 and "LPIPS_reference/mean" in results
    tags = set()
    for event_file in glob.glob(str(work / "logs" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags |= {v.tag for v in event.summary.value if event.step == 2}
    assert set(results) <= tags


def test_readme_command_uses_real_flags(tmp_path):
    import shlex

    from test_readme import readme_block

    command = shlex.split(readme_block("bash", "stargan-tf-evaluate --").strip())
    assert command[0] == "stargan-tf-evaluate"  # the installed name of stargan_tf.evaluate
    # Run where none of its paths exist: the flags parse, and the first path is reported.
    result = run_module("stargan_tf.evaluate", *command[1:], cwd=tmp_path)
    assert_usage_error(result, "--checkpoint=converted/afhq is not a directory")


def test_eval_readers_of_one_domain(tmp_path):
    import data_helpers as dh

    from stargan_tf.data import pipeline

    split = str(tmp_path / "val")
    stored = dh.write_split(split, dh.coded_images([5, 3], 16), num_shards=2)
    # eval_dataset(domain=1): the domain's images once, in stored order.
    names = [
        n.decode() for _, _, f in pipeline.eval_dataset(split, 16, 2, domain=1) for n in f.numpy()
    ]
    assert names == [name for name, label in stored if label == 1]
    # reference_dataset: full batches of the domain, every image once per pass, seeded.
    batches = pipeline.reference_dataset(split, 16, 2, domain=0, seed=5).take(5)
    codes = [dh.decode_code(x) for xs, _, _ in batches for x in xs.numpy()]
    assert len(codes) == 10 and {d for d, _ in codes} == {0}
    assert sorted(i for _, i in codes[:5]) == [0, 1, 2, 3, 4]  # One shuffled pass...
    assert sorted(i for _, i in codes[5:]) == [0, 1, 2, 3, 4]  # ...then another.
    again = pipeline.reference_dataset(split, 16, 2, domain=0, seed=5).take(5)
    assert codes == [dh.decode_code(x) for xs, _, _ in again for x in xs.numpy()]


def test_statistics_cache_key_follows_data_weights_and_size(tmp_path):
    import types

    from stargan_tf.metrics import real_stats

    rng = np.random.default_rng(4)
    write_domain_folder(str(tmp_path / "train"), 2, rng, DOMAINS)
    # cache_path reads the extractor's variant and weights hash only.
    official = types.SimpleNamespace(variant="official", weights_sha256="a" * 64)
    key = lambda extractor=official, size=32, domain="cat": real_stats.cache_path(  # noqa: E731
        str(tmp_path / "cache"), str(tmp_path / "train"), domain, extractor, size
    )
    first = key()
    assert first == key() and os.path.basename(first).startswith("cat-official-32px-")
    others = {
        key(size=64),
        key(domain="dog"),
        key(types.SimpleNamespace(variant="official", weights_sha256="b" * 64)),
        key(types.SimpleNamespace(variant="fid", weights_sha256="a" * 64)),
    }
    assert first not in others and len(others) == 4
    write_domain_folder(str(tmp_path / "train"), 3, rng, ("cat",))  # One more cat image.
    assert key() != first
