"""Judges demo training runs with the demo classifier; prints one JSON line.

usage: judge_demo.py DATA_DIR SOURCES_PER_DOMAIN [WORKDIR[:STEP] ...]

Trains the classifier on DATA_DIR/train (tests/demo_classifier.py) with TensorFlow op determinism
and a fixed seed, so that its numbers repeat exactly, and reports its accuracy on DATA_DIR/val
and, for each workdir (at STEP, default its latest checkpoint), the fraction of latent- and
reference-guided translations of val images that it sees as the target shape:
{"classifier_val": a, "runs": [{"workdir": w, "step": s, "latent": a, "reference": a,
"translations": n}, ...]}. Its own process: op determinism is process-wide.
"""

import json
import os
import sys

import tensorflow as tf

tf.config.experimental.enable_op_determinism()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/

import demo_classifier  # noqa: E402
import stargan_tf  # noqa: E402


def main(data_dir, sources_per_domain, *runs):
    classifier = demo_classifier.train_classifier(
        *demo_classifier.read_split(os.path.join(data_dir, "train"))
    )
    x_val, y_val = demo_classifier.read_split(os.path.join(data_dir, "val"))
    result = {"classifier_val": demo_classifier.accuracy(classifier, x_val, y_val), "runs": []}
    for run in runs:
        workdir, _, step = run.partition(":")
        nets = stargan_tf.load_networks(workdir, step=int(step) if step else None)  # EMA
        judged = {"workdir": workdir, "step": int(step) if step else None}
        for guidance in ("latent", "reference"):
            fakes, targets = demo_classifier.translations(
                nets, x_val, y_val, guidance, int(sources_per_domain)
            )
            judged[guidance] = demo_classifier.accuracy(classifier, fakes, targets)
            judged["translations"] = len(fakes)
        result["runs"].append(judged)
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
