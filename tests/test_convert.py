"""Converting official checkpoints: the library API, tools/convert_pytorch_checkpoint.py, the
model directory it writes, and a one-line answer (exit status 2) for every bad input."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import stargan_tf
from cli_helpers import assert_usage_error, run_command
from support import REPO
from stargan_tf.model_dir import ModelDirError
from stargan_tf.official.checkpoint import ConversionError

TOOL = REPO / "tools" / "convert_pytorch_checkpoint.py"

# Converted networks vs the official outputs, max abs: FACTOR x the worst deviation seen, measured
# (with every output, in test_parity.py's terms) by a throwaway script, each setting a separate
# process, on both fixtures: TF_NUM_INTRAOP_THREADS=1 and 2, op determinism off and on, oneDNN off
# or limited to AVX2 or SSE4.1 kernels (ONEDNN_MAX_CPU_ISA), repeats; 11 processes.
FACTOR = 3
FAKE_ATOL = FACTOR * 2.4e-5  # fake_lat, both fixtures (worst: small64, SSE4.1 kernels)
LOGIT_ATOL = FACTOR * 5.7e-7  # d_real_all (small64)


def run_tool(*args, preamble=""):
    """Runs the converter in a fresh process; returns (exit status, stdout, stderr)."""
    code = (
        f"import sys, runpy\n{preamble}\nsys.argv = {[str(TOOL)] + [str(a) for a in args]!r}\n"
        f"runpy.run_path({str(TOOL)!r}, run_name='__main__')\n"
    )
    return run_command([sys.executable, "-c", code])


def official_state(fixture):
    return torch.load(fixture / "nets.ckpt", map_location="cpu", weights_only=True)


def save_variant(path, state):
    torch.save(state, path)
    return path


def translate(nets, d):
    s = nets.mapping_network(d["z_trg"], d["y_trg"])
    return nets.generator(d["x"], s).numpy()


@pytest.fixture(scope="module")
def small64(small64_dir):
    return dict(np.load(small64_dir / "fixture.npz"))


def test_cli_round_trip(small64_dir, small64, tmp_path):
    out = tmp_path / "converted"
    status, stdout, stderr = run_tool(
        "--checkpoint", small64_dir / "nets.ckpt", "--out", out, "--domain_names", "cat,dog,wild"
    )
    assert status == 0, stderr
    assert "trained networks" in stdout and "cat,dog,wild" in stdout
    meta = json.loads((out / "config.json").read_text())
    assert meta["model"]["domain_names"] == ["cat", "dog", "wild"]
    assert meta["model"]["img_size"] == 64 and meta["model"]["max_conv_dim"] == 64
    nets = stargan_tf.load_networks(str(out))
    assert nets.discriminator is not None  # a *_nets.ckpt holds the trained networks with D
    assert nets.config.domain_names == ("cat", "dog", "wild")
    np.testing.assert_allclose(
        translate(nets, small64), small64["fake_lat"], atol=FAKE_ATOL, rtol=0
    )
    np.testing.assert_allclose(
        nets.discriminator(small64["x"]).numpy(), small64["d_real_all"], atol=LOGIT_ATOL, rtol=0
    )
    # Every variable comes back with the converted value.
    direct = stargan_tf.official_variable_map(
        stargan_tf.convert_official_checkpoint(str(small64_dir / "nets.ckpt"))
    )
    loaded = stargan_tf.official_variable_map(nets)
    assert set(loaded) == set(direct)
    for key, var in loaded.items():
        np.testing.assert_array_equal(var.numpy(), direct[key].numpy(), err_msg=key)
    # Nothing but the model directory is left beside it (the temporary directory was renamed).
    assert sorted(os.listdir(tmp_path)) == ["converted"]


def test_nets_ema_file_with_fan_entry(small64_dir, small64, tmp_path):
    state = official_state(small64_dir)
    del state["discriminator"]
    state["fan"] = {"conv1.weight": torch.zeros(4, 3, 3, 3)}  # skipped with a warning
    ckpt = save_variant(tmp_path / "100000_nets_ema.ckpt", state)
    out = tmp_path / "ema"
    status, stdout, stderr = run_tool("--checkpoint", ckpt, "--out", out)
    assert status == 0, stderr
    assert "'fan' entry" in stderr and "skipped" in stderr
    assert "EMA networks" in stdout and "step 100000" in stdout
    assert (out / "checkpoints" / "ckpt-100000.index").exists()
    nets = stargan_tf.load_networks(str(out))
    assert nets.discriminator is None
    assert nets.config.domain_names == ("domain0", "domain1", "domain2")
    np.testing.assert_allclose(
        translate(nets, small64), small64["fake_lat"], atol=FAKE_ATOL, rtol=0
    )
    with pytest.raises(ModelDirError, match="no trained networks"):
        stargan_tf.load_networks(str(out), ema=False)


def test_data_parallel_prefix_is_accepted(small64_dir, small64, tmp_path):
    state = {
        net: {f"module.{k}": v for k, v in sd.items()}
        for net, sd in official_state(small64_dir).items()
    }
    nets = stargan_tf.convert_official_checkpoint(str(save_variant(tmp_path / "dp.ckpt", state)))
    np.testing.assert_allclose(
        translate(nets, small64), small64["fake_lat"], atol=FAKE_ATOL, rtol=0
    )


def test_stated_values_that_agree_are_accepted(small64_dir):
    nets = stargan_tf.convert_official_checkpoint(
        str(small64_dir / "nets.ckpt"),
        img_size=64,
        style_dim=16,
        latent_dim=8,
        num_domains=3,
        max_conv_dim=64,
        w_hpf=0,
        dim_in=256,
        domain_names="a,b,c",
    )
    assert nets.config.domain_names == ("a", "b", "c")
    assert nets.config.resolved_dim_in == 256


def test_w_hpf_from_the_filter_or_the_structure(hpf256_dir, tmp_path):
    state = official_state(hpf256_dir)
    d = dict(np.load(hpf256_dir / "fixture.npz"))
    masks = (d["masks_0"], d["masks_1"])

    # Older official checkpoints have no hpf.filter buffer: the structure says w_hpf > 0, value 1.
    del state["generator"]["hpf.filter"]
    no_filter = str(save_variant(tmp_path / "old.ckpt", state))
    nets = stargan_tf.convert_official_checkpoint(no_filter)
    assert nets.config.w_hpf == 1.0
    s = nets.mapping_network(d["z_trg"], d["y_trg"])
    np.testing.assert_allclose(
        nets.generator(d["x"], s, masks=masks).numpy(), d["fake_lat"], atol=FAKE_ATOL, rtol=0
    )
    # Without the buffer, a stated w_hpf is taken: it scales the high-pass path (a wrong w_hpf,
    # 2 instead of 1, is outside the tolerance).
    nets2 = stargan_tf.convert_official_checkpoint(no_filter, w_hpf=2)
    assert nets2.config.w_hpf == 2.0
    assert np.abs(nets2.generator(d["x"], s, masks=masks).numpy() - d["fake_lat"]).max() > max(
        1e-3, FAKE_ATOL
    )

    # A filter of another w_hpf is read as such.
    state["generator"]["hpf.filter"] = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]) / 4
    nets4 = stargan_tf.convert_official_checkpoint(str(save_variant(tmp_path / "w4.ckpt", state)))
    assert nets4.config.w_hpf == 4.0


def test_stated_w_hpf_contradicting_the_filter(hpf256_dir, tmp_path):
    result = run_tool(
        "--checkpoint", hpf256_dir / "nets.ckpt", "--out", tmp_path / "o", "--w_hpf", "2"
    )
    assert_usage_error(result, "w_hpf=2", "hpf.filter", "w_hpf=1")
    assert not (tmp_path / "o").exists()


def test_stated_value_contradicting_a_shape(small64_dir, tmp_path):
    result = run_tool(
        "--checkpoint", small64_dir / "nets.ckpt", "--out", tmp_path / "o", "--style_dim", "32"
    )
    # Names the tensor and both shapes (PyTorch layout).
    assert_usage_error(result, "generator/decode.0.norm1.fc.weight", "(128, 16)", "(128, 32)")
    assert not (tmp_path / "o").exists()
    with pytest.raises(
        ConversionError, match=r"mapping_network/shared.0.weight has shape \(512, 8\)"
    ):
        stargan_tf.convert_official_checkpoint(str(small64_dir / "nets.ckpt"), latent_dim=4)


def test_stated_img_size_contradicting_the_structure(small64_dir):
    with pytest.raises(ConversionError, match="missing keys: .*unknown keys: "):
        stargan_tf.convert_official_checkpoint(str(small64_dir / "nets.ckpt"), img_size=128)


def test_unknown_and_missing_keys_are_listed(small64_dir, tmp_path):
    state = official_state(small64_dir)
    state["generator"]["extra.weight"] = torch.zeros(3)
    del state["style_encoder"]["unshared.0.bias"]
    ckpt = save_variant(tmp_path / "odd.ckpt", state)
    with pytest.raises(ConversionError) as info:
        stargan_tf.convert_official_checkpoint(str(ckpt))
    assert "missing keys: style_encoder/unshared.0.bias" in str(info.value)
    assert "unknown keys: generator/extra.weight" in str(info.value)
    assert_usage_error(
        run_tool("--checkpoint", ckpt, "--out", tmp_path / "o"),
        "style_encoder/unshared.0.bias",
        "generator/extra.weight",
    )


def test_missing_file(tmp_path):
    assert_usage_error(
        run_tool("--checkpoint", tmp_path / "nope.ckpt", "--out", tmp_path / "o"),
        "not found",
        "nope.ckpt",
    )


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", b"\x89PNG\r\n\x1a\n0000"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    assert_usage_error(
        run_tool("--checkpoint", path, "--out", tmp_path / "o"),
        str(path),
        "not a PyTorch checkpoint",
    )
    assert not (tmp_path / "o").exists()


def test_a_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "archive.ckpt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not torch")
    assert_usage_error(
        run_tool("--checkpoint", path, "--out", tmp_path / "o"),
        str(path),
        "not a readable PyTorch checkpoint",
    )


def test_a_directory_instead_of_a_file(tmp_path):
    assert_usage_error(
        run_tool("--checkpoint", tmp_path, "--out", tmp_path / "o"), "is a directory"
    )


def test_a_pickle_with_code_never_runs_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.ckpt"
    # A checkpoint whose unpickling would run a shell command: weights_only loading refuses it.
    script = (
        f"import os, torch\nclass Evil:\n    def __reduce__(self):\n"
        f"        return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'generator': Evil()}}, {str(path)!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert_usage_error(
        run_tool("--checkpoint", path, "--out", tmp_path / "o"), "safe (weights_only) load refuses"
    )
    assert not marker.exists()


def test_a_pytorch_file_of_another_model(tmp_path):
    path = save_variant(tmp_path / "resnet.pth", {"conv1.weight": torch.zeros(2, 3, 3, 3)})
    assert_usage_error(
        run_tool("--checkpoint", path, "--out", tmp_path / "o"), "not a StarGAN v2 checkpoint"
    )
    path = save_variant(tmp_path / "partial.ckpt", {"generator": {}})
    assert_usage_error(
        run_tool("--checkpoint", path, "--out", tmp_path / "o"),
        "missing entries: mapping_network, style_encoder",
    )


def test_torch_not_installed(small64_dir, tmp_path):
    # sys.modules[name] = None is how Python marks a module as absent: `import torch` fails.
    result = run_tool(
        "--checkpoint",
        small64_dir / "nets.ckpt",
        "--out",
        tmp_path / "o",
        preamble="sys.modules['torch'] = None",
    )
    assert_usage_error(result, "needs torch", "pip install")


def test_out_dir_that_already_holds_files(small64_dir, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_usage_error(
        run_tool("--checkpoint", small64_dir / "nets.ckpt", "--out", out),
        "already holds files",
        "--overwrite",
    )
    assert (out / "keep.txt").read_text() == "mine"


def test_missing_and_bad_flags(tmp_path):
    assert_usage_error(run_tool("--out", tmp_path / "o"), "--checkpoint")
    assert_usage_error(
        run_tool("--checkpoint", "x.ckpt", "--out", tmp_path / "o", "--img_size", "big"), "img_size"
    )


def test_load_networks_bad_directories(tmp_path):
    with pytest.raises(ModelDirError, match="does not exist"):
        stargan_tf.load_networks(str(tmp_path / "nothing"))
    with pytest.raises(ModelDirError, match="no config.json"):
        stargan_tf.load_networks(str(tmp_path))
