#!/usr/bin/env python3
"""Old path of the TFRecord writer, kept so that old command lines still work.

The writer is `stargan-tf-make-tfrecords` (or `python -m stargan_tf.make_tfrecords`):
stargan_tf/make_tfrecords.py.
"""

from stargan_tf.make_tfrecords import run

if __name__ == "__main__":
    run()
