"""Training: config, optimizer, the per-iteration step under tf.distribute, checkpoints, monitoring."""
