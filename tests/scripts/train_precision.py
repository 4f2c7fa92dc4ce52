"""Trains a tiny model 2 iterations with a precision policy and/or XLA; prints JSON results.

Run in its own process: the Keras dtype policy is process-wide.
usage: train_precision.py MIXED_PRECISION("" | mixed_float16 | mixed_bfloat16) JIT(0|1) WORKDIR
"""

import sys
import json
import numpy as np
import tensorflow as tf
from stargan_tf.config import ModelConfig
from stargan_tf.training.config import TrainConfig
from stargan_tf.training.trainer import Trainer, configure_process

mp, jit = sys.argv[1], sys.argv[2] == "1"
rng = np.random.default_rng(0)
B = 2
b = dict(
    x_real=rng.uniform(-1, 1, [B, 32, 32, 3]).astype(np.float32),
    y_org=np.array([0, 1], np.int32),
    x_ref=rng.uniform(-1, 1, [B, 32, 32, 3]).astype(np.float32),
    x_ref2=rng.uniform(-1, 1, [B, 32, 32, 3]).astype(np.float32),
    y_trg=np.array([1, 0], np.int32),
    z_trg=rng.normal(size=[B, 4]).astype(np.float32),
    z_trg2=rng.normal(size=[B, 4]).astype(np.float32),
)
cfg = TrainConfig(
    model=ModelConfig(
        img_size=32, style_dim=8, latent_dim=4, num_domains=2, max_conv_dim=16, w_hpf=0, dim_in=8
    ),
    workdir=sys.argv[3],
    batch_size=B,
    total_iters=2,
    save_every=2,
    sample_every=2,
    print_every=1,
    mixed_precision=mp,
    jit_compile=jit,
)
configure_process(cfg)
t = Trainer(
    cfg, tf.distribute.OneDeviceStrategy("/cpu:0"), tf.data.Dataset.from_tensors(b).repeat()
)
m = t.train()
print(
    json.dumps(
        {
            "finite": all(np.isfinite(v) for v in m.values()),
            "dtype": str(t.nets.generator.compute_dtype),
            "m": m,
        }
    )
)
