"""MODEL_CARD.md: written with every model directory and export, saying what the model is, how
it was made and the license of its weights (stargan_tf/model_card.py)."""

import hashlib
import json

import stargan_tf
from stargan_tf import model_card, model_dir
from support import tiny

TINY = tiny(decoder="modconv")


def test_file_sha256(tmp_path):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"weights" * 300_000)  # more than one read chunk
    assert model_card.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_converted_official_weights_carry_their_license(tmp_path):
    meta = {
        "model": TINY.to_dict(),
        "source": {
            "official_checkpoint": "/data/expr/100000_nets_ema.ckpt",
            "sha256": "ab" * 32,
            "step": 100000,
        },
    }
    card = model_card.card_text(meta)
    for fragment in [
        "Domains | cat, dog",
        "32 x 32",
        "modconv",
        "`100000_nets_ema.ckpt`",
        "ab" * 32,
        "step 100000",
        "CC BY-NC 4.0",
        "non-commercial",
        "Choi",
        "clovaai/stargan-v2",
        "MIT",
        "load_networks",
    ]:
        assert fragment in card, fragment
    assert "/data/expr" not in card  # the file's name, not where it lay


def test_a_trained_model_states_its_run(tmp_path):
    train = {
        "train_data": "data/tfr/train",
        "total_iters": 1600,
        "batch_size": 8,
        "lr": 2e-3,
        "init_from": "",
    }
    card = model_card.card_text(
        {"model": TINY.to_dict(), "train": train, "provenance": {"tensorflow": "2.21.0"}}
    )
    for fragment in [
        "Trained with stargan-tf-train on `data/tfr/train`",
        "1600 iterations",
        "batch_size 8",
        "lr 0.002",
        "tensorflow 2.21.0",
        "MIT",
    ]:
        assert fragment in card, fragment
    assert "CC BY-NC" not in card
    # Started from a converted official model: the official license follows the weights.
    official = tmp_path / "converted"
    official.mkdir()
    (official / "config.json").write_text(
        json.dumps({"model": TINY.to_dict(), "source": {"official_checkpoint": "/x/nets.ckpt"}})
    )
    card = model_card.card_text(
        {"model": TINY.to_dict(), "train": {**train, "init_from": str(official)}}
    )
    assert "initialised from" in card and "CC BY-NC 4.0" in card and "Choi" in card


def test_model_directories_and_exports_get_a_card(tmp_path):
    nets = stargan_tf.build_networks(TINY, discriminator=False)
    source = {"official_checkpoint": "/x/7_nets_ema.ckpt", "sha256": "cd" * 32, "step": 7}
    stargan_tf.save_networks(nets, str(tmp_path / "model"), step=7, source=source)
    card = (tmp_path / "model" / model_card.CARD_FILE).read_text()
    assert "`7_nets_ema.ckpt`" in card and "cd" * 32 in card and "CC BY-NC 4.0" in card

    exported = model_dir.export_card(str(tmp_path / "model"), None, ema=True)
    assert "Exported with stargan-tf-export" in exported and "step 7" in exported
    assert "A TF Serving SavedModel" in exported and "CC BY-NC 4.0" in exported
    from stargan_tf.inference import serving

    path = serving.export_versioned(nets, str(tmp_path / "exported"), model_card=exported)
    assert (tmp_path / "exported" / "1" / model_card.CARD_FILE).read_text() == exported
    assert path.endswith("1")
