"""Retrieval evaluation: ITC ranking and ITM re-ranking of each query's top-k."""

from __future__ import annotations

import torch

from ash_neuro.data.datasets import retrieval_split
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.metrics import recall_at_k
from ash_neuro.models.factory import build_model
from ash_neuro.retrieval import evaluate_retrieval, itm_match_scores, itm_rerank, promote


def test_promote_ranks_the_rescored_entries_first_in_their_new_order():
    sim = torch.tensor([[0.9, 0.1], [0.5, 0.7], [0.3, 0.2]])
    # re-score (image 1, text 0) and (image 2, text 0); (2, 0) now beats (1, 0)
    out = promote(sim, torch.tensor([1, 2]), torch.tensor([0, 0]), torch.tensor([-3.0, 4.0]))
    assert out[:, 0].argsort(descending=True).tolist() == [2, 1, 0]
    # untouched entries keep their order among themselves
    assert out[:, 1].argsort(descending=True).tolist() == [1, 2, 0]


def test_reranking_everything_is_ranking_by_itm(tiny_config):
    torch.manual_seed(0)
    tokenizer = load_tokenizer(tokenizer_path_for(tiny_config.world.path))
    model = build_model(tiny_config, len(tokenizer), tokenizer.pad_token_id).eval()
    data = retrieval_split(tiny_config.world.path, "test", limit=8)
    max_len, device = tiny_config.model.text.max_len, torch.device("cpu")
    n_img, n_txt = len(data.images), len(data.texts)
    args = (model, data.images, data.texts, data.txt2img, data.img2txt, tokenizer, max_len)
    itc = evaluate_retrieval(*args, device)
    reranked = evaluate_retrieval(*args, device, rerank_k=n_txt)
    # the full ITM score matrix, pair by pair
    with torch.no_grad():
        tokens = model.encode_image(data.images).tokens
        enc = tokenizer(
            data.texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        hidden = model.encode_text(enc["input_ids"], enc["attention_mask"]).hidden
        images = torch.arange(n_img).repeat_interleave(n_txt)
        texts = torch.arange(n_txt).repeat(n_img)
        itm = itm_match_scores(model, tokens, hidden, enc["attention_mask"], images, texts)
    expected = recall_at_k(itm.view(n_img, n_txt), data.txt2img, data.img2txt)
    for key, value in expected.items():
        assert abs(reranked[key] - value) < 1e-4, key
    assert reranked != itc  # an untrained ITM head ranks differently from ITC


def test_itm_rerank_keeps_the_itc_top_k_on_top(tiny_config):
    torch.manual_seed(0)
    tokenizer = load_tokenizer(tokenizer_path_for(tiny_config.world.path))
    model = build_model(tiny_config, len(tokenizer), tokenizer.pad_token_id).eval()
    data = retrieval_split(tiny_config.world.path, "test", limit=6)
    sim = torch.randn(len(data.images), len(data.texts))
    t2i, i2t = itm_rerank(
        model, sim, data.images, data.texts, tokenizer, 24, torch.device("cpu"), k=2
    )
    # each query's two best candidates by ITC stay its two best after re-ranking
    for text in range(sim.shape[1]):
        assert set(t2i[:, text].topk(2).indices.tolist()) == set(
            sim[:, text].topk(2).indices.tolist()
        )
    for image in range(sim.shape[0]):
        assert set(i2t[image].topk(2).indices.tolist()) == set(sim[image].topk(2).indices.tolist())
