#!/usr/bin/env python3
"""Old path of the converter, kept so that old command lines still work.

The converter is `stargan-tf-convert` (or `python -m stargan_tf.convert`): stargan_tf/convert.py.
"""

from stargan_tf.convert import run

if __name__ == "__main__":
    run()
