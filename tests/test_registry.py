"""Registries: a config's `kind:` picks a component; an unknown kind is one line naming the
key and listing the registered kinds."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ash_neuro.config import config_from_dict
from ash_neuro.errors import ConfigError
from ash_neuro.models.factory import build_model, build_task_model
from ash_neuro.registry import (
    ADAPTERS,
    ALIGNMENT_HEADS,
    ANCHOR_SOURCES,
    ASSOCIATIVE_PROMPTS,
    FUSION_ENCODERS,
    GRAPH_ENCODERS,
    IMAGE_DECODERS,
    LOSSES,
    SPIKE_CODINGS,
    SPIKING_ENCODERS,
    TASKS,
    TEXT_ENCODERS,
    VISUAL_CONCEPTS,
    VISUAL_ENCODERS,
    Registry,
)
from tests.models.conftest import TINY

BUILT_IN = {
    VISUAL_ENCODERS: ("vit", "panoptic_instances", "pretrained"),
    SPIKING_ENCODERS: ("lif_stack", "none"),
    SPIKE_CODINGS: ("current", "poisson"),
    TEXT_ENCODERS: ("bert",),
    GRAPH_ENCODERS: ("none", "gat"),
    ADAPTERS: ("concat", "ratio"),
    FUSION_ENCODERS: ("cross_attention", "albef", "unified"),
    VISUAL_CONCEPTS: ("none", "tagged"),
    ALIGNMENT_HEADS: ("none", "hierarchical"),
    IMAGE_DECODERS: ("none", "mae"),
    LOSSES: (
        "itc",
        "itm",
        "mlm",
        "spike_contrastive",
        "stua",
        "stl",
        "spike_rate",
        "neuron_rate",
        "visual_sphere",
        "text_sphere",
        "amc",
        "hitc",
        "concept_tagging",
        "mim",
    ),
    ANCHOR_SOURCES: ("tags", "caption"),
    ASSOCIATIVE_PROMPTS: ("swap",),
    TASKS: ("retrieval", "vqa", "ve", "nlvr", "grounding"),
}


@pytest.mark.parametrize("registry", list(BUILT_IN), ids=lambda r: r.key)
def test_the_built_in_kinds_register_themselves_on_first_lookup(registry):
    assert set(registry.names()) == set(BUILT_IN[registry])
    assert all(name in registry for name in BUILT_IN[registry])


def test_unknown_kind_is_one_line_listing_the_registered_names():
    with pytest.raises(ConfigError) as info:
        ADAPTERS.get("gated")
    assert str(info.value) == (
        "model.adapter.kind: unknown adapter 'gated'; registered: concat, ratio"
    )
    with pytest.raises(ConfigError) as info:
        SPIKING_ENCODERS.get("izhikevich")
    assert str(info.value) == (
        "model.spiking.kind: unknown spiking encoder 'izhikevich'; registered: lif_stack, none"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "visual",
            {"kind": "cnn"},
            "model.visual.kind: unknown visual encoder 'cnn'; registered: panoptic_instances, "
            "pretrained, vit",
        ),
        (
            "spiking",
            {"encoding": "morse"},
            "model.spiking.encoding: unknown spike coding 'morse'; registered: current, poisson",
        ),
        ("fusion", {"kind": "film"}, "model.fusion.kind: unknown fusion encoder 'film'"),
        ("text", {"kind": "gpt"}, "model.text.kind: unknown text encoder 'gpt'"),
    ],
)
def test_building_a_model_of_an_unknown_kind_names_the_key(key, value, message):
    data = {**TINY, "model": {**TINY["model"], key: {**TINY["model"].get(key, {}), **value}}}
    with pytest.raises(ConfigError) as info:
        build_model(config_from_dict(data), 40)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_task_lists_the_tasks():
    cfg = config_from_dict({**TINY, "finetune": {"task": "captioning"}})
    with pytest.raises(ConfigError) as info:
        build_task_model(cfg, 40)
    assert str(info.value) == (
        "finetune.task: unknown task 'captioning'; registered: grounding, nlvr, retrieval, ve, vqa"
    )


def test_a_component_defined_outside_the_package_is_chosen_by_config():
    """A test's own adapter: mean of ANN tokens and rates, registered, picked by `kind:`."""

    class MeanAdapter(nn.Module):
        token_sets = 1

        def __init__(self, cfg, dim, spike_dim):
            super().__init__()
            self.spike_proj = nn.Linear(spike_dim, dim)

        def forward(self, features, spiking=None):
            rates = self.spike_proj(spiking.spikes.mean(dim=0))
            return (features.tokens + rates) / 2, (features.grid,)

    ADAPTERS.register("mean_test")(MeanAdapter)
    try:
        cfg = config_from_dict(TINY)
        cfg = dataclasses.replace(
            cfg,
            model=dataclasses.replace(
                cfg.model, adapter=dataclasses.replace(cfg.model.adapter, kind="mean_test")
            ),
        )
        model = build_model(cfg, 40)
        assert isinstance(model.adapter, MeanAdapter)
        visual = model.encode_image(torch.rand(2, 3, 16, 16))
        assert visual.tokens.shape == visual.features.tokens.shape == (2, 5, 16)
        assert "mean_test" in ADAPTERS.names()
    finally:
        ADAPTERS.unregister("mean_test")
    assert "mean_test" not in ADAPTERS


def test_one_name_cannot_register_two_components():
    registry: Registry = Registry("widget", "model.widget.kind", ())
    registry.register("a")(int)
    registry.register("a")(int)  # the same entry again is harmless (a re-imported module)
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        registry.register("a")(float)
    assert list(registry) == ["a"] and registry.get("a") is int
