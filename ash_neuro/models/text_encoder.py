"""Text encoder: a BERT-style `transformers` model, built from config or pretrained.

kind "bert": `transformers.BertModel` built from a `BertConfig` (no download), with the
tokenizer's vocabulary size and pad id, hidden = `dim`, `depth` layers, `heads` heads and BERT's
4x feed-forward width. With `model.text.pretrained` set, a pretrained BERT-family encoder and its
tokenizer are loaded instead (`ash_neuro.models.pretrained_text`, built by
`ash_neuro.models.backbones.build_text_encoder`); `TextEncoder` wraps either.

Input ids `(batch, L)` int64 and mask `(batch, L)` (1 = token, 0 = [PAD]) -> `TextFeatures`:
hidden states `(batch, L, width)` (position 0, [CLS], summarises the text) and every layer's.
"""

from __future__ import annotations

from torch import Tensor, nn
from transformers import BertConfig, BertModel, PreTrainedModel

from ash_neuro.config import TextConfig
from ash_neuro.models.outputs import TextFeatures
from ash_neuro.registry import TEXT_ENCODERS


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
