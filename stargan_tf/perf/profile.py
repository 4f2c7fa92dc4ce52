"""Where an iteration's time goes: a tf.profiler trace of it, summed by op type."""

import collections
import glob
import tempfile

import tensorflow as tf

# Trace events that wrap others (the process, the function call, the executor's run).
_WRAPPERS = ("Process", "Run")


def op_time_by_type(fn):
    """Runs `fn()` under the TF profiler; returns [(op type, seconds, count)], largest first.

    Seconds are summed over the threads that ran the ops, so they add up to more than the wall
    time when ops run concurrently.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    logdir = tempfile.mkdtemp(prefix="stargan-profile-")
    tf.profiler.experimental.start(logdir)
    try:
        fn()
    finally:
        tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    for path in glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True):
        with open(path, "rb") as f:
            space.MergeFromString(f.read())
    seconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name:  # op events are named "<node name>:<op type>"
                    continue
                op = name.rsplit(":", 1)[1].strip()
                if op in _WRAPPERS or op.startswith("__inference"):
                    continue
                seconds[op] += event.duration_ps / 1e12
                counts[op] += 1
    return [(op, s, counts[op]) for op, s in seconds.most_common()]
