#!/usr/bin/env python3
"""Writes the built-in demo dataset (coloured circles, squares and triangles) for training.

  python tools/make_demo_dataset.py --output_dir .demo/data

The same as `python -m stargan_tf.data.demo`; see stargan_tf/data/demo.py for what it draws.
Output: OUT/train and OUT/val in the layout of stargan_tf/data/format.py, and OUT/demo.json.
Running it again with the same flags finds the dataset and does nothing.
"""

from stargan_tf import demo

if __name__ == "__main__":
    demo.run()
