"""Resuming training resumes the data: `train_dataset(start_step=k)` yields exactly the batches an
uninterrupted pipeline yields after k steps, on one replica and with several replicas per
pipeline."""

import numpy as np

import data_helpers
from stargan_tf.data.pipeline import train_dataset


class _Context:
    """The two fields of tf.distribute.InputContext that matter here: 2 replicas, 1 pipeline."""

    input_pipeline_id = 0
    num_input_pipelines = 1
    num_replicas_in_sync = 2


def _batches(dataset, n):
    return [{k: v.numpy() for k, v in b.items()} for b in dataset.take(n)]


def test_start_step_continues_the_stream(tmp_path):
    split = tmp_path / "train"
    data_helpers.write_split(str(split), data_helpers.coded_images([5, 3, 4], 16))
    for context, per_step in ((None, 1), (_Context(), 2)):
        kwargs = dict(img_size=16, batch_size=2, latent_dim=3, seed=5, input_context=context)
        full = _batches(train_dataset(str(split), **kwargs), 7 * per_step)
        resumed = _batches(train_dataset(str(split), start_step=4, **kwargs), 3 * per_step)
        for want, got in zip(full[4 * per_step :], resumed):
            assert want.keys() == got.keys()
            for key in want:
                np.testing.assert_array_equal(want[key], got[key], err_msg=key)
        # And it is not the start of the stream again.
        assert not np.array_equal(full[0]["z_trg"], resumed[0]["z_trg"])
