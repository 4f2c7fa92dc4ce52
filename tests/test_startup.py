"""The command-line start-up: console scripts, recipes, quiet TensorFlow, the extras' errors,
and a training path that imports without POSIX-only modules. (The installed wheel itself:
tests/test_packaging.py.)"""

import os
import re
import subprocess
import sys
import tomllib

import numpy as np
from absl import flags
from PIL import Image

import stargan_tf
from cli_helpers import assert_usage_error, run_command, run_module, subprocess_env
from support import REPO, TINY, flagfile_values
from stargan_tf import recipes, startup

NOISE = ["cuInit", "cudart_stub", "AVX", "oneDNN", "absl::InitializeLog"]


def run_code(code, env=None):
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        timeout=600,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_console_scripts_name_a_run_function_of_their_module():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted(scripts) == sorted(
        f"stargan-tf-{n}"
        for n in [
            "train",
            "convert",
            "make-tfrecords",
            "sample",
            "translate",
            "export",
            "evaluate",
            "align",
            "demo",
            "app",
        ]
    )
    for script, target in scripts.items():
        module, function = target.split(":")
        assert function == "run", target
        # `stargan-tf-X` is `python -m stargan_tf.X` (the README's rule).
        assert module == "stargan_tf." + script[len("stargan-tf-") :].replace("-", "_")
        # Each in its own process: the tools define flags of the same names.
        status, _, stderr = run_code(f"import {module} as m; assert callable(m.{function})")
        assert status == 0, stderr[-2000:]


def test_tools_shims_run_the_package_modules():
    for tool, name in [
        ("convert_pytorch_checkpoint.py", "checkpoint"),
        ("make_tfrecords.py", "train_dir"),
    ]:
        status, stdout, stderr = run_command([sys.executable, REPO / "tools" / tool, "--help"])
        assert status == 0 and f"--{name}" in stdout + stderr, stderr[-2000:]


def test_recipes_are_flagfiles_that_later_flags_override():
    assert recipes.names() == ["afhq256", "afhq512", "celeba_hq256", "demo"]
    assert (REPO / "configs" / "demo.cfg").resolve() == (
        REPO / "stargan_tf" / "configs" / "demo.cfg"
    ).resolve()
    argv, error = recipes.expand_recipe_flags(["prog", "--lr=5", "--recipe", "demo", "--seed=1"])
    assert error is None
    assert argv == [
        "prog",
        "--lr=5",
        "--recipe=demo",
        f"--flagfile={recipes.path('demo')}",
        "--seed=1",
    ]
    values = flags.FlagValues()
    flags.DEFINE_float("lr", 0.0, "", flag_values=values)
    flags.DEFINE_integer("seed", 0, "", flag_values=values)
    flags.DEFINE_integer("total_iters", 0, "", flag_values=values)
    flags.DEFINE_string("recipe", None, "", flag_values=values)
    values(argv, known_only=True)
    recipe_iters = int(flagfile_values(recipes.path("demo"))["total_iters"])
    assert recipe_iters > 0
    # Before the recipe: overridden by it; after it: overrides it.
    assert (values.lr, values.seed, values.total_iters) == (2e-3, 1, recipe_iters)
    assert recipes.expand_recipe_flags(["prog", "--", "--recipe=nope"]) == (
        ["prog", "--", "--recipe=nope"],
        None,
    )


def test_an_unknown_recipe_is_one_line_naming_the_recipes(tmp_path):
    assert_usage_error(
        run_module(
            "stargan_tf.train", "--recipe=afhq1024", f"--workdir={tmp_path / 'w'}", "--train_data=x"
        ),
        "--recipe=afhq1024: no such recipe",
        "afhq256, afhq512, celeba_hq256, demo",
    )
    assert_usage_error(run_module("stargan_tf.train", "--recipe"), "--recipe needs a name")


def test_a_tfds_input_without_the_extra_names_it(tmp_path):
    code = (
        "import sys\nsys.modules['tensorflow_datasets'] = None  # not installed\n"
        "sys.argv = ['stargan-tf-train', '--train_data=tfds:mnist', "
        f"'--workdir={tmp_path / 'w'}']\nfrom stargan_tf.train import run\nrun()\n"
    )
    assert_usage_error(run_code(code), "tensorflow-datasets", "pip install 'stargan_tf[tfds]'")
    assert not (tmp_path / "w").exists()


def test_the_training_path_imports_without_fcntl():
    # sys.modules[name] = None marks a module absent, as on Windows: importing it fails.
    code = (
        "import sys\nsys.modules['fcntl'] = None\n"
        "import stargan_tf.train, stargan_tf.training.trainer, stargan_tf.training.recovery\n"
        "import stargan_tf.training.preemption, stargan_tf.data.pipeline\n"
        "print('imported')\n"
    )
    status, stdout, stderr = run_code(code)
    assert status == 0 and "imported" in stdout, stderr[-3000:]


def test_noise_filter_keeps_real_errors():
    lines = {
        "WARNING: All log messages before absl::InitializeLog() is called are written to "
        "STDERR": True,
        "I0000 00:00:1796341111.522913    3942 port.cc:153] oneDNN custom operations are on.": True,
        "W0000 00:00:1796341111.523325    3942 cudart_stub.cc:31] Could not find cuda "
        "drivers": True,
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.": True,
        "E0000 00:00:1796341115.433404    3942 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)": None,  # no GPU only
        "E0000 00:00:1796341115.433404    3942 op_kernel.cc:1857] OP_REQUIRES failed": False,
        "Traceback (most recent call last):": False,
        "ImportError: libcudnn.so.9: cannot open shared object file": False,
        "UserWarning: something Python said": False,
    }
    for line, noise in lines.items():
        assert startup.is_noise(line + "\n", gpu_found=False) is (noise is not False), line
        assert startup.is_noise(line + "\n", gpu_found=True) is bool(noise), line


def make_model(tmp_path):
    stargan_tf.save_networks(
        stargan_tf.build_networks(TINY, discriminator=False), str(tmp_path / "model")
    )
    Image.fromarray(np.random.default_rng(0).integers(0, 256, [40, 30, 3], np.uint8)).save(
        tmp_path / "cat.png"
    )


def test_a_command_keeps_tensorflow_start_up_noise_off_the_terminal(tmp_path):
    make_model(tmp_path)
    args = [
        "--checkpoint",
        tmp_path / "model",
        "--input",
        tmp_path / "cat.png",
        "--output",
        tmp_path / "dog.png",
        "--target_domain",
        "dog",
    ]
    env = {k: v for k, v in subprocess_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "stargan_tf.translate", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "dog.png").is_file()
    noisy = [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, noisy
    assert len(re.findall("No GPU found: running on the CPU.", proc.stderr)) == 1, proc.stderr

    # Asked for (the user's own TF_CPP_MIN_LOG_LEVEL): nothing is hidden, which shows that the
    # quiet run above hid something real on this machine.
    proc = subprocess.run(
        [sys.executable, "-m", "stargan_tf.translate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(n in proc.stderr for n in NOISE), proc.stderr[-3000:]
    assert "No GPU found" not in proc.stderr

    # --help loads no TensorFlow and prints none of it either.
    status, stdout, stderr = run_module("stargan_tf.sample", "--help")
    assert status == 0 and "--src_dir" in stdout + stderr
    assert not [n for n in NOISE if n in stderr], stderr


def test_intra_op_threads_are_halved_only_for_small_work_on_a_cpu():
    from stargan_tf.training.threads import intra_op_threads

    assert intra_op_threads(8, 32, cpu_count=2, env={}) == 1  # the demo's and small32's size
    assert intra_op_threads(2, 64, cpu_count=16, env={}) == 8
    assert intra_op_threads(1, 1, cpu_count=1, env={}) == 1
    assert intra_op_threads(4, 64, cpu_count=2, env={}) is None  # official64: TF's default
    assert intra_op_threads(1, 256, cpu_count=2, env={}) is None
    assert intra_op_threads(8, 32, cpu_count=2, accelerators=True, env={}) is None
    assert intra_op_threads(8, 32, cpu_count=2, env={"TF_NUM_INTRAOP_THREADS": "2"}) is None


def test_intra_op_threads_are_set_before_the_runtime_starts_and_left_after():
    """In a fresh process configure() sets the pool (before the first op); once TensorFlow's
    runtime runs it leaves the pool alone instead of failing."""

    def configure(op_first, env):
        code = (
            "import types, tensorflow as tf\n"
            "from stargan_tf.training import threads\n"
            "model = types.SimpleNamespace(img_size=32)\n"
            "small = types.SimpleNamespace(batch_size=8, model=model)\n"
            f"{'print(float(tf.reduce_sum(tf.ones([4]))))' if op_first else ''}\n"
            "print('set', threads.configure(small))\n"
            "print('pool', tf.config.threading.get_intra_op_parallelism_threads())\n"
            "print(float(tf.reduce_sum(tf.ones([3]))))\n"
        )
        status, stdout, stderr = run_code(code, env)
        assert status == 0 and "3.0" in stdout, stderr[-3000:]
        return re.search(r"set (\w+)\npool (\d+)", stdout).groups()

    env = subprocess_env()
    env.pop("TF_NUM_INTRAOP_THREADS", None)
    expected = str(max(1, (os.cpu_count() or 1) // 2))
    assert configure(False, env) == (expected, expected)
    assert configure(True, env) == ("None", "0")  # 0: TensorFlow's default, untouched
    # The user's TF_NUM_INTRAOP_THREADS wins: nothing is set.
    assert configure(False, {**env, "TF_NUM_INTRAOP_THREADS": "2"}) == ("None", "0")
