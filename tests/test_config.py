"""Config loading: inheritance, overrides, and one-line errors naming the bad key."""

from pathlib import Path

import pytest

from ash_neuro.config import (
    Config,
    config_from_dict,
    config_to_dict,
    default_loss_weights,
    load_config,
    override_config,
)
from ash_neuro.errors import ConfigError
from tests.conftest import ROOT

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_base_inheritance_and_overrides():
    cfg = load_config(CONFIGS / "ann_only.yaml", ["train.lr=1e-3", "model.spiking.time_steps=6"])
    assert cfg.model.spiking.kind == "none"
    assert load_config(CONFIGS / "default.yaml").model.spiking.kind == "lif_stack"
    assert cfg.model.visual.dim == load_config(CONFIGS / "default.yaml").model.visual.dim
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.model.spiking.time_steps == 6


def test_round_trip_through_dict():
    cfg = load_config(CONFIGS / "default.yaml")
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.visal.dim=3"], "unknown config key 'model.visal'"),
        (["train.lr=fast"], "train.lr: expected float"),
        (["data.check_images=maybe"], "data.check_images: expected true or false"),
        (["data.kind=imagenet"], "data.kind: 'imagenet' is not one of"),
        (["loss.weights.itc=high"], "loss.weights.itc: expected float, got str 'high'"),
        (["loss.weights=0.5"], "loss.weights: expected a mapping, got 0.5"),
        (["model.spiking.hidden_dims=7"], "model.spiking.hidden_dims: expected a list"),
        (["train.epochs"], "is not key=value"),
        (["model.visual.patch_size=7"], "must divide world.image_size"),
    ],
)
def test_bad_input_is_one_line_error_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "default.yaml", overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {visual: {dim: 3}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(loop)


# --- loss weights: a mapping merged over the defaults -------------------------------------------

DEFAULT_WEIGHTS = {
    "itc": 1.0,
    "itm": 1.0,
    "mlm": 1.0,
    "spike_contrastive": 0.5,
    "stua": 0.5,
    "spike_rate": 0.1,
}


def test_default_loss_weights():
    assert default_loss_weights() == DEFAULT_WEIGHTS
    assert list(default_loss_weights()) == list(DEFAULT_WEIGHTS)  # the order losses run in
    assert load_config(CONFIGS / "default.yaml").loss.weights == DEFAULT_WEIGHTS


def test_a_weight_override_keeps_the_other_weights_and_their_order():
    cfg = load_config(CONFIGS / "default.yaml", ["loss.weights.mlm=0", "loss.weights.itm=2"])
    assert list(cfg.loss.weights.items()) == [
        ("itc", 1.0),
        ("itm", 2.0),
        ("mlm", 0.0),
        ("spike_contrastive", 0.5),
        ("stua", 0.5),
        ("spike_rate", 0.1),
    ]
    # an int is a float weight; a new name is appended after the defaults
    cfg = load_config(CONFIGS / "default.yaml", ["loss.weights.my_loss=3"])
    assert list(cfg.loss.weights)[-1] == "my_loss" and cfg.loss.weights["my_loss"] == 3.0
    assert isinstance(cfg.loss.weights["my_loss"], float)


def test_weights_merge_through_base_files_and_overrides(tmp_path):
    # ann_only.yaml zeroes the spiking losses; the override zeroes MLM too; ITC and ITM stay
    cfg = load_config(CONFIGS / "ann_only.yaml", ["loss.weights.mlm=0"])
    assert cfg.loss.weights == {
        **DEFAULT_WEIGHTS,
        "mlm": 0.0,
        "spike_contrastive": 0.0,
        "stua": 0.0,
        "spike_rate": 0.0,
    }
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {CONFIGS / 'ann_only.yaml'}\nloss:\n  weights: {{stua: 0.25}}\n")
    weights = load_config(child).loss.weights
    assert weights == {**DEFAULT_WEIGHTS, "spike_contrastive": 0.0, "stua": 0.25, "spike_rate": 0.0}
    # a dict with only some weights, straight into config_from_dict
    assert config_from_dict({"loss": {"weights": {"itc": 0.5}}}).loss.weights == {
        **DEFAULT_WEIGHTS,
        "itc": 0.5,
    }
    # override_config (a checkpoint's config plus overrides) merges the same way
    base = load_config(CONFIGS / "default.yaml", ["loss.weights.itm=0"])
    changed = override_config(base, ["loss.weights.stua=2"])
    assert changed.loss.weights == {**DEFAULT_WEIGHTS, "itm": 0.0, "stua": 2.0}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.hybrid=false",
            "config key 'model.hybrid' is retired: use model.spiking.kind=none for the "
            "ANN-only network (lif_stack: hybrid)",
        ),
        (
            "loss.itc=0.5",
            "config key 'loss.itc' is retired: loss weights live under loss.weights "
            "(loss.weights.itc=...)",
        ),
        (
            "loss.spike_rate=0",
            "config key 'loss.spike_rate' is retired: loss weights live under loss.weights "
            "(loss.weights.spike_rate=...)",
        ),
    ],
)
def test_retired_keys_are_one_line_errors_naming_the_replacement(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "default.yaml", [override])
    assert str(info.value) == message


def test_a_retired_key_in_a_file_is_refused_too(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("model:\n  hybrid: false\n")
    with pytest.raises(ConfigError, match="^config key 'model.hybrid' is retired: ") as info:
        load_config(old)
    assert "\n" not in str(info.value)
    # a key that was never a config key stays "unknown"
    with pytest.raises(ConfigError, match="unknown config key 'loss.hybrid'"):
        load_config(CONFIGS / "default.yaml", ["loss.hybrid=1"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=0", "train.batch_size=0 is out of range; allowed: >= 1"),
        ("train.log_every=0", "train.log_every=0 is out of range; allowed: >= 1"),
        ("train.ckpt_every=0", "train.ckpt_every=0 is out of range; allowed: >= 1"),
        ("train.lr=-1", "train.lr=-1.0 is out of range; allowed: >= 0"),
        ("train.lr=.nan", "train.lr=nan is out of range; allowed: >= 0"),
        ("train.epochs=0", "train.epochs=0 is out of range; allowed: >= 1"),
        ("model.spiking.dt=0", "model.spiking.dt=0.0 is out of range; allowed: > 0"),
        ("model.spiking.hidden_dims=[8,0]", "model.spiking.hidden_dims=[8, 0] is out of range"),
        ("loss.temperature=0.6", "loss.temperature=0.6 is out of range; allowed: [0.001, 0.5]"),
        ("loss.temperature=0.0005", "loss.temperature=0.0005 is out of range"),
        ("loss.mask_prob=0", "loss.mask_prob=0.0 is out of range; allowed: (0, 1]"),
        ("loss.target_rate=1", "loss.target_rate=1.0 is out of range; allowed: (0, 1)"),
        ("loss.weights.stua=-0.5", "loss.weights.stua=-0.5 is out of range; allowed: >= 0"),
        ("model.text.max_len=2", "model.text.max_len=2 is out of range; allowed: >= 3"),
        ("finetune.head_lr_scale=0", "finetune.head_lr_scale=0.0 is out of range; allowed: > 0"),
    ],
)
def test_values_out_of_range_are_one_line_errors_naming_key_value_and_range(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "configs" / "default.yaml", [override])
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "override",
    ["loss.temperature=0.5", "loss.temperature=0.001", "loss.mask_prob=1", "train.max_steps=0"],
)
def test_values_on_the_edge_of_their_range_load(override):
    load_config(ROOT / "configs" / "default.yaml", [override])
