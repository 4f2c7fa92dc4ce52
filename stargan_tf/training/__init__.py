"""Training: config, optimizer, the step under tf.distribute, checkpoints, monitoring."""
