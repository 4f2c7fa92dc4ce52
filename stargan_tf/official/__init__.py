"""The official PyTorch code's files: its StarGAN v2 checkpoints, its FAN (wing.ckpt) and the
published metric weights, read with torch (the `[torch]` extra) and converted to our networks."""
