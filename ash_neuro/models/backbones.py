"""Pretrained backbones in a run: the config they imply, how `ASHNet` builds them (from their
files, or from a checkpoint's record without them), freezing and their learning rate.

`resolve_backbones(cfg)` is what `train` runs first: a pretrained text backbone sets
`model.text.dim/depth/heads` to its own, a pretrained visual one sets `model.visual.kind` to
"pretrained" and `model.visual.dim` to its token width, and ALBEF's split fusion takes the
text encoder's heads; the config a checkpoint stores then describes the network as built.

Records (`ASHNet.backbone_records`, saved as a checkpoint's `backbones`): per pretrained part,
its name, where it was read and its architecture (`pretrained_text.text_record`,
`pretrained_visual.visual_record`); `ASHNet(backbones=...)` rebuilds from them with no file of
the backbone on disk, and the checkpoint's weights replace the random ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from ash_neuro.config import Config, TextConfig, VisualConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.text_encoder import TextEncoder
from ash_neuro.registry import VISUAL_ENCODERS

TEXT, VISUAL = "text", "visual"
# a backbone part -> the ASHNet sub-module that holds it
PARTS = {TEXT: "text_encoder", VISUAL: "visual_concrete_encoder"}


def resolve_backbones(cfg: Config) -> Config:
    """`cfg` with the dimensions its pretrained backbones imply (their config files are read;
    no weights). A config without pretrained parts comes back unchanged but for the "albef"
    fusion's heads."""
    model = cfg.model
    text, visual, fusion = model.text, model.visual, model.fusion
    if text.pretrained:
        from ash_neuro.models.pretrained_text import backbone_config

        if text.kind != "bert":
            raise ConfigError(
                f"model.text.pretrained needs model.text.kind=bert (a BERT-family encoder), "
                f"not {text.kind}"
            )
        config = backbone_config(text.pretrained)
        text = dataclasses.replace(
            text,
            dim=config.hidden_size,
            depth=config.num_hidden_layers,
            heads=config.num_attention_heads,
        )
    if visual.pretrained:
        from ash_neuro.models.pretrained_visual import token_width, visual_record

        if visual.kind not in ("vit", "pretrained"):
            raise ConfigError(
                f"model.visual.pretrained replaces the ViT (kind vit); kind {visual.kind} pools "
                "the scratch ViT's patches and takes no pretrained backbone"
            )
        width = token_width(visual_record(visual.pretrained))
        visual = dataclasses.replace(visual, kind="pretrained", dim=width)
    if fusion.kind == "albef":
        fusion = dataclasses.replace(fusion, heads=text.heads)
    model = dataclasses.replace(model, text=text, visual=visual, fusion=fusion)
    return dataclasses.replace(cfg, model=model)


def build_visual_encoder(cfg: VisualConfig, image_size: int, record: dict | None) -> nn.Module:
    """The visual encoder `cfg.kind` names; one that `loads_pretrained` gets the checkpoint's
    record (None: it reads its files)."""
    entry = VISUAL_ENCODERS.get(cfg.kind)
    if getattr(entry, "loads_pretrained", False):
        return entry(cfg, image_size, record)
    if cfg.pretrained:
        raise ConfigError(
            f"model.visual.pretrained={cfg.pretrained} with kind {cfg.kind}: use kind pretrained"
        )
    return entry(cfg, image_size)


def build_text_encoder(
    cfg: TextConfig, vocab_size: int, pad_token_id: int, record: dict | None
) -> tuple[TextEncoder, dict | None, nn.Module | None]:
    """(the text encoder, its record (None: built from scratch), the MLM prediction head of
    its weights when read from files that have one)."""
    if not cfg.pretrained:
        return TextEncoder.build(cfg, vocab_size, pad_token_id), None, None
    from ash_neuro.models.pretrained_text import encoder_from_record, load_text_backbone

    if record is not None:
        return TextEncoder(encoder_from_record(record)), record, None
    loaded = load_text_backbone(cfg.pretrained)
    rows = loaded.encoder.config.vocab_size
    if vocab_size > rows:
        raise ConfigError(
            f"model.text.pretrained={cfg.pretrained} embeds {rows} tokens but the tokenizer has "
            f"{vocab_size}; use the model's own tokenizer"
        )
    return TextEncoder(loaded.encoder), loaded.record, loaded.mlm_head


def run_tokenizer(cfg: Config) -> Any:
    """The tokenizer a pre-training run uses: the pretrained text backbone's own, else the
    world's (written beside the world file)."""
    if cfg.model.text.pretrained:
        from ash_neuro.models.pretrained_text import pretrained_tokenizer

        return pretrained_tokenizer(cfg.model.text.pretrained)
    from ash_neuro.data.tokenizer import load_world_tokenizer

    return load_world_tokenizer(cfg.world.path)


def _layers(encoder: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    """(the embedding modules, the layers in order) of a text or visual encoder."""
    model = getattr(encoder, "model", None)
    if model is None:
        model = getattr(encoder, "backbone", None)
    if model is None:  # the scratch ViT ("vit"; "panoptic_instances" wraps one)
        vit = getattr(encoder, "patches", encoder)
        return [vit.patch_embed], list(vit.blocks.layers)
    if hasattr(model, "embeddings"):  # transformers: BERT family, ViT, DeiT
        return [model.embeddings], list(model.encoder.layer)
    return [model._conv_stem, model._bn0], list(model._blocks)  # EfficientNet


def freeze(backbone: nn.Module, parts: list[str]) -> int:
    """Stop the gradient of `parts` of an `ASHNet` (`train.freeze`: "text", "visual" whole, or
    "text:N", "visual:N": the embeddings and lower N layers); returns the parameters frozen."""
    frozen = 0
    for part in parts:
        name, _, count = part.partition(":")
        encoder = getattr(backbone, PARTS[name])
        if count:
            embeddings, layers = _layers(encoder)
            if int(count) > len(layers):
                raise ConfigError(
                    f"train.freeze: {part} but the {name} encoder has {len(layers)} layers"
                )
            modules = [*embeddings, *layers[: int(count)]]
        else:
            modules = [encoder]
        for module in modules:
            for param in module.parameters():
                if param.requires_grad:
                    param.requires_grad_(False)
                    frozen += param.numel()
    return frozen


def pretrained_lr_scales(cfg: Config, prefix: str = "") -> dict[str, float]:
    """`loop.build_optimizer`'s `lr_scales` for the pretrained backbones: parameter-name
    prefix (`prefix` + the sub-module) -> `train.pretrained_lr_scale`."""
    scale = cfg.train.pretrained_lr_scale
    pretrained = {TEXT: cfg.model.text.pretrained, VISUAL: cfg.model.visual.pretrained}
    return {f"{prefix}{PARTS[part]}.": scale for part, name in pretrained.items() if name}
