"""Pretrained text backbones (`model.text.pretrained`): any BERT-family encoder that
`transformers` loads, with its tokenizer and, where its weights have one, its MLM head.

Loading (`load_text_backbone`) reads the model through `AutoModelForMaskedLM` so that BERT's
prediction head comes with it when the files hold one (`cls.predictions.*`: a BertForMaskedLM
or BertForPreTraining checkpoint); the encoder is that model's base (`BertModel` without the
pooler, which nothing here reads). A family with no masked-LM class loads with `AutoModel`.

A checkpoint rebuilds the same encoder without the files: `text_record` (saved as
`backbones.text`) holds the model's `transformers` config, and `encoder_from_record` builds the
architecture from it alone (random weights, then overwritten by the checkpoint's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ash_neuro.errors import ConfigError
from ash_neuro.models.hub import from_pretrained, quiet_transformers, resolve_source

KEY = "model.text.pretrained"
MLM_PREFIX = "cls.predictions."


@dataclass
class TextBackbone:
    """A loaded text backbone: the encoder, BERT's MLM prediction head where the weights hold
    one (None otherwise) and the record that rebuilds the encoder without the files."""

    encoder: nn.Module
    mlm_head: nn.Module | None
    record: dict


def config_dict(config: Any) -> dict:
    """A `transformers` config as plain JSON values (what `torch.load(weights_only=True)`
    reads back)."""
    return json.loads(config.to_json_string(use_diff=False))


def text_record(name: str, config: Any) -> dict:
    return {"pretrained": name, "source": resolve_source(name, KEY), "config": config_dict(config)}


def _base(model: nn.Module) -> nn.Module:
    # a masked-LM model wraps the encoder (BertForMaskedLM.bert); AutoModel's is the encoder
    return getattr(model, "base_model", model)


def load_text_backbone(name: str) -> TextBackbone:
    """The encoder `name` (see `hub.resolve_source`) with its weights, offline."""
    from transformers import AutoModel, AutoModelForMaskedLM

    try:
        model, info = from_pretrained(AutoModelForMaskedLM, name, KEY, output_loading_info=True)
    except ValueError:  # a family without a masked-LM class
        model = from_pretrained(AutoModel, name, KEY)
        return TextBackbone(model, None, text_record(name, model.config))
    missing = [key for key in info["missing_keys"] if key.startswith(MLM_PREFIX)]
    head = getattr(getattr(model, "cls", None), "predictions", None)
    return TextBackbone(
        _base(model), None if missing else head, text_record(name, _base(model).config)
    )


def encoder_from_record(record: dict) -> nn.Module:
    """The architecture `text_record` describes, randomly initialised; no file is read."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    config = AutoConfig.for_model(**record["config"])
    with quiet_transformers():
        try:
            return _base(AutoModelForMaskedLM.from_config(config))
        except ValueError:
            return AutoModel.from_config(config)


def backbone_config(name: str) -> Any:
    """The `transformers` config of `name` (dimensions only; no weights are read)."""
    from transformers import AutoConfig

    return from_pretrained(AutoConfig, name, KEY)


def pretrained_tokenizer(name: str) -> Any:
    """The tokenizer saved with `name`, as the fast tokenizer every command uses; it needs
    [PAD] and [MASK] (MLM) and a `tokenizers` backend (a checkpoint serialises it)."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, name, KEY)
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise ConfigError(f"{KEY}={name}: its tokenizer has no fast (tokenizers) version")
    if tokenizer.pad_token_id is None or tokenizer.mask_token_id is None:
        raise ConfigError(f"{KEY}={name}: its tokenizer has no [PAD] or [MASK] token")
    return tokenizer


def copy_mlm_head(head: nn.Module, predictions: nn.Module) -> None:
    """BERT's prediction head (`BertLMPredictionHead`: transform dense, activation, LayerNorm,
    decoder tied to the word embeddings, bias) into a `heads.MaskedLMHead` over the first
    `head.decoder.out_features` tokens."""
    transform = predictions.transform
    dense, norm, decoder = head.transform[0], head.transform[2], head.decoder
    vocab = decoder.out_features
    pairs: list[tuple[Tensor, Tensor]] = [
        (dense.weight, transform.dense.weight),
        (dense.bias, transform.dense.bias),
        (norm.weight, transform.LayerNorm.weight),
        (norm.bias, transform.LayerNorm.bias),
        (decoder.weight, predictions.decoder.weight[:vocab]),
        (decoder.bias, predictions.bias[:vocab]),
    ]
    for target, source in pairs:
        if target.shape != source.shape:
            raise ConfigError(
                f"{KEY}: the MLM head's weights {tuple(source.shape)} do not fit "
                f"{tuple(target.shape)}"
            )
        target.data.copy_(source.detach())
