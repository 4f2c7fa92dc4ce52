"""A tiny CNN that tells the demo dataset's domains (shapes) apart, to judge translated images.

It is trained on the demo's own train split and labels (seconds on a CPU), so a test can ask of a
translated image "which shape is this?" without any external model:

    classifier = train_classifier(read_split("OUT/train"))
    accuracy(classifier, *read_split("OUT/val"))  # > 0.95

Images are float32 [N, S, S, 3] in [-1, 1], as the networks take and give them. Colours are the
demo's style, so the classifier is trained with random colour permutations and inversions of its
inputs: it must look at the outline, not at the palette.
"""

import numpy as np


def read_split(split_dir, img_size=None):
    """Every image of a split directory: (x float32 [N, S, S, 3] in [-1, 1], y int32 [N])."""
    from stargan_tf.data import format as data_format
    from stargan_tf.data.pipeline import eval_dataset

    img_size = img_size or data_format.read_metadata(split_dir)["img_size"]
    xs, ys = [], []
    for x, y, _ in eval_dataset(split_dir, img_size, 256):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys).astype(np.int32)


def build_classifier(img_size, num_domains):
    """Three conv stages and a global average pool: about 25k parameters."""
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input([img_size, img_size, 3]),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(num_domains),
        ],
        name="demo_classifier",
    )


def augment(x, rng):
    """What does not change a shape: channel order, inverted channels, a horizontal flip."""
    n = len(x)
    perm = np.argsort(rng.random([n, 3]), axis=1)  # [N, 3] a channel permutation per image
    x = np.take_along_axis(x, perm[:, None, None, :], axis=3)
    sign = np.where(rng.random([n, 1, 1, 3]) < 0.5, -1.0, 1.0).astype(np.float32)
    x = x * sign
    flip = rng.random(n) < 0.5
    x[flip] = x[flip, :, ::-1]
    return x


def train_classifier(
    x, y, num_domains=None, min_epochs=6, max_epochs=30, target=0.99, batch_size=64, seed=0
):
    """Trains the classifier on (x, y); returns the Keras model (logits).

    Trains at least `min_epochs` epochs, then on until the model classifies `target` of the
    (unaugmented) training images right or `max_epochs` have passed: how fast a run gets there
    varies (thread scheduling changes the float sums), and a fixed epoch count once stopped at
    85%, too weak a judge of translations.
    """
    import keras

    keras.utils.set_random_seed(seed)
    num_domains = num_domains or int(y.max()) + 1
    model = build_classifier(x.shape[1], num_domains)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(seed)
    for epoch in range(max_epochs):
        order = rng.permutation(len(x))
        model.fit(
            augment(x[order], rng),
            y[order],
            batch_size=batch_size,
            epochs=1,
            verbose=0,
            shuffle=False,
        )
        if epoch + 1 >= min_epochs and accuracy(model, x, y) >= target:
            break
    return model


def predict(model, x):
    """Domain ids [N] of images x [N, S, S, 3] in [-1, 1]."""
    return np.argmax(model.predict(np.asarray(x, np.float32), batch_size=256, verbose=0), axis=1)


def accuracy(model, x, y):
    """Fraction of images x whose predicted domain is y."""
    return float(np.mean(predict(model, x) == np.asarray(y)))


def translations(nets, x_val, y_val, guidance, sources_per_domain, seed=0, with_sources=False):
    """Every source translated into every other domain: (fakes, targets), and with
    `with_sources` the source images' domains as a third array.

    The first `sources_per_domain` val images of each domain are the sources; latent-guided
    styles come from N(0, I) codes, reference-guided ones from val images of the target domain
    that are not sources.
    """
    rng = np.random.default_rng(seed)
    num_domains = nets.config.num_domains
    sources = np.concatenate(
        [np.flatnonzero(y_val == d)[:sources_per_domain] for d in range(num_domains)]
    )  # [K]
    fakes, targets, origins = [], [], []
    for trg in range(num_domains):
        src = sources[y_val[sources] != trg]
        x_src = x_val[src]  # [n, S, S, 3]
        y_trg = np.full([len(src)], trg, np.int32)
        if guidance == "latent":
            z = rng.standard_normal([len(src), nets.config.latent_dim]).astype(np.float32)
            s = nets.mapping_network(z, y_trg)
        else:  # references: val images of the target domain, none of them a source
            pool = np.setdiff1d(np.flatnonzero(y_val == trg), sources)
            s = nets.style_encoder(x_val[rng.choice(pool, len(src))], y_trg)
        fakes.append(nets.generator(x_src, s).numpy())
        targets.append(y_trg)
        origins.append(y_val[src])
    if with_sources:
        return np.concatenate(fakes), np.concatenate(targets), np.concatenate(origins)
    return np.concatenate(fakes), np.concatenate(targets)
