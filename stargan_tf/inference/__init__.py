"""Inference: loading a model for use, translating images, sample grids and videos, export.

`translation.translate` is the Python call (`stargan_tf.translate`); `grids` and `video` render
what `python -m stargan_tf.sample` writes; `serving` builds the SavedModel of
`python -m stargan_tf.export`; `python -m stargan_tf.translate` translates folders.
"""
