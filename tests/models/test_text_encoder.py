"""The text encoder: BERT built from config (pretrained backbones: test_pretrained_text.py)."""

from __future__ import annotations

import torch

from ash_neuro.config import TextConfig
from ash_neuro.models.text_encoder import TextEncoder


def test_bert_is_built_from_config_with_the_tokenizers_vocabulary():
    encoder = TextEncoder.build(TextConfig(dim=16, depth=1, heads=2, max_len=12), 37, 0)
    config = encoder.model.config
    assert (config.vocab_size, config.pad_token_id, config.hidden_size) == (37, 0, 16)
    assert config.num_hidden_layers == 1 and config.num_attention_heads == 2
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    features = encoder(ids, mask)
    assert features.hidden.shape == (2, 6, 16) and encoder.width == 16
    assert features.mask is mask
    # the embeddings and one state per layer; the last is the output
    assert len(features.hidden_states) == 2
    torch.testing.assert_close(features.hidden_states[-1], features.hidden)


def test_padding_does_not_change_the_real_tokens_states():
    encoder = TextEncoder.build(TextConfig(dim=16, depth=2, heads=2, max_len=12), 37, 0).eval()
    short = torch.tensor([[2, 7, 9, 3]])
    padded = torch.tensor([[2, 7, 9, 3, 0, 0, 0]])
    a = encoder(short, torch.ones_like(short)).hidden
    b = encoder(padded, (padded != 0).long()).hidden
    torch.testing.assert_close(a, b[:, :4], atol=1e-5, rtol=1e-5)
