"""Config loading: inheritance, overrides, and one-line errors naming the bad key."""

from pathlib import Path

import pytest

from ash_neuro.config import Config, config_from_dict, config_to_dict, load_config
from ash_neuro.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_base_inheritance_and_overrides():
    cfg = load_config(CONFIGS / "ann_only.yaml", ["train.lr=1e-3", "model.spiking.time_steps=6"])
    assert cfg.model.hybrid is False
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
        (["model.hybrid=maybe"], "model.hybrid: expected true or false"),
        (["model.spiking.encoding=morse"], "model.spiking.encoding: 'morse' is not one of"),
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
    bad.write_text("model: {hybrid: true\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(loop)
