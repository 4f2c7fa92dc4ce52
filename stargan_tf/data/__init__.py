"""Data: TFRecord datasets written from image folders, and the tf.data pipelines that read them."""
