"""What training says (issue 29, item 6): a class mismatch names every differing species, a resume names one
epoch, a convnet's applied --img-size is no news, a refusal's resume command resumes the folder it names."""

from __future__ import annotations

import logging
import shlex
import shutil

import pytest
import torch

from mushroom_id.engine.config import TrainConfig, load_config, parse_args, save_config
from mushroom_id.engine.loop import TrainState, signature_differences


def test_a_class_mismatch_names_every_species_on_each_side():
    saved = ["Amanita muscaria", "Amanita phalloides", "Amanita virosa", "Boletus edulis", "Galerina marginata"]
    current = ["Amanita muscaria", "Amanita virosa", "Boletus edulis", "Cantharellus cibarius"]
    (line,) = signature_differences({"classes": saved}, {"classes": current})
    assert "only in the checkpoint: Amanita phalloides, Galerina marginata" in line
    assert "only in this run: Cantharellus cibarius" in line and "5 species (checkpoint) vs 4 (this run)" in line
    # the same number of species, one renamed: both names given, none elided
    (line,) = signature_differences({"classes": saved}, {"classes": [*saved[:4], "Galerina clavata"]})
    assert "only in the checkpoint: Galerina marginata" in line and "only in this run: Galerina clavata" in line
    assert "..." not in line


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (TrainState(epoch=0, step=5, batch=5), "epoch 1, step 5 (5 batches into epoch 1)"),
        (TrainState(epoch=2, step=40, batch=0), "epoch 2, step 40 (epoch 2 done; next: epoch 3)"),
    ],
    ids=["inside-an-epoch", "at-an-epoch-end"],
)
def test_the_resume_message_names_one_epoch(tmp_path, state, said):
    from mushroom_id.engine.loop import resumed_message

    message = resumed_message(tmp_path / "ckpt", state)
    assert message.endswith(said) and "epoch 0" not in message


def test_an_applied_img_size_is_not_reported_as_not_passed(caplog):
    from mushroom_id.engine.trainable import create_timm_model

    overlay = {"input_size": (3, 64, 64)}
    with caplog.at_level(logging.INFO), torch.device("meta"):
        model, dropped = create_timm_model(
            "tf_efficientnet_lite0", num_classes=3, img_size=64, pretrained_cfg_overlay=overlay
        )
    assert dropped == {"img_size": 64} and model.pretrained_cfg["input_size"] == (3, 64, 64)  # applied
    assert not [r for r in caplog.records if "img_size" in r.getMessage()]
    with caplog.at_level(logging.INFO), torch.device("meta"):  # a real refusal is still said
        create_timm_model("legacy_xception", num_classes=3, drop_path_rate=0.0)
    assert any("does not take drop_path_rate" in r.getMessage() for r in caplog.records)


def test_the_suggested_resume_command_resumes_the_folder_it_names(tmp_path):
    """A run folder copied elsewhere: its config.yaml still names the original folder, so the suggested
    `--config <copy>/config.yaml --resume auto` resumed (and wrote into) the original."""
    from mushroom_id.engine.loop import resume_refusal

    original = tmp_path / "runs" / "a"
    save_config(TrainConfig(output_dir=str(original), data="somewhere"), original / "config.yaml")
    (original / "checkpoints" / "epoch_001").mkdir(parents=True)
    copy = tmp_path / "elsewhere" / "a-copy"
    shutil.copytree(original, copy)
    message = resume_refusal(copy / "checkpoints" / "epoch_001", ["batch size: 4 (checkpoint) vs 2 (this run)"])
    command = shlex.split(message.split("(python train.py ", 1)[1].split(")", 1)[0])
    config_file, overrides = parse_args(command, description="")
    config = load_config(config_file, overrides)
    assert config.resume == "auto" and config.out_dir().resolve() == copy.resolve()
