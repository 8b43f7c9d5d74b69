"""Retrieval evaluation: ITC ranking and ITM re-ranking of each query's top-k, checked against
scores computed one pair at a time and Recall@K computed in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ash_neuro.data.datasets import retrieval_split
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.models.factory import build_model
from ash_neuro.retrieval import evaluate_retrieval, itm_rerank, promote
from tests.retrieval_reference import itc_scores, recall


def test_promote_ranks_the_rescored_entries_first_in_their_new_order():
    sim = torch.tensor([[0.9, 0.1], [0.5, 0.7], [0.3, 0.2]])
    # re-score (image 1, text 0) and (image 2, text 0); (2, 0) now beats (1, 0)
    out = promote(sim, torch.tensor([1, 2]), torch.tensor([0, 0]), torch.tensor([-3.0, 4.0]))
    assert out[:, 0].argsort(descending=True).tolist() == [2, 1, 0]
    # untouched entries keep their order among themselves
    assert out[:, 1].argsort(descending=True).tolist() == [1, 2, 0]


@pytest.fixture
def setup(tiny_config):
    torch.manual_seed(0)
    tokenizer = load_tokenizer(tokenizer_path_for(tiny_config.world.path))
    model = build_model(tiny_config, len(tokenizer), tokenizer.pad_token_id).eval()
    return model, tokenizer, tiny_config.model.text.max_len


def pairwise_itm(model, data, tokenizer, max_len: int) -> np.ndarray:
    """`(images, texts)` ITM log-odds of "matching", each pair fused on its own."""
    with torch.no_grad():
        scores = np.zeros((len(data.images), len(data.texts)))
        for t, text in enumerate(data.texts):
            enc = tokenizer([text], truncation=True, max_length=max_len, return_tensors="pt")
            hidden = model.encode_text(enc["input_ids"], enc["attention_mask"]).hidden
            for i in range(len(data.images)):
                tokens = model.encode_image(data.images[i : i + 1]).tokens
                fused = model.fuse(hidden, enc["attention_mask"], tokens)
                logits = model.itm(fused[:, 0])[0].double()
                scores[i, t] = float(logits[1] - logits[0])
    return scores


def test_itc_ranking_equals_numpy_recall_of_pairwise_cosines(tiny_config, setup):
    model, tokenizer, max_len = setup
    data = retrieval_split(tiny_config.world.path, "test")  # all 24 images
    metrics = evaluate_retrieval(model, data, tokenizer, max_len, torch.device("cpu"))
    expected = recall(
        itc_scores(model, data, tokenizer, max_len), data.txt2img.tolist(), data.img2txt
    )
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key


def test_reranking_everything_is_ranking_by_itm(tiny_config, setup):
    model, tokenizer, max_len = setup
    data = retrieval_split(tiny_config.world.path, "test", limit=8)
    device, n_txt = torch.device("cpu"), len(data.texts)
    itc = evaluate_retrieval(model, data, tokenizer, max_len, device)
    reranked = evaluate_retrieval(model, data, tokenizer, max_len, device, rerank_k=n_txt)
    itm = pairwise_itm(model, data, tokenizer, max_len)
    expected = recall(itm, data.txt2img.tolist(), data.img2txt)
    for key, value in expected.items():
        assert reranked[key] == pytest.approx(value, abs=1e-4), key
    assert reranked != itc  # an untrained ITM head ranks differently from ITC


def test_reranking_the_top_two_by_itm(tiny_config, setup):
    """k = 2: each query's two best ITC candidates are ordered by ITM and rank above the rest,
    which keep their ITC order (NumPy, from pairwise scores)."""
    model, tokenizer, max_len = setup
    data = retrieval_split(tiny_config.world.path, "test", limit=6)
    itc, itm = (
        itc_scores(model, data, tokenizer, max_len),
        pairwise_itm(model, data, tokenizer, max_len),
    )
    t2i, i2t = itc.copy() - 100, itc.copy() - 100  # below every ITM log-odds of this model
    for t in range(itc.shape[1]):
        top = np.argsort(-itc[:, t])[:2]
        t2i[top, t] = itm[top, t]
    for i in range(itc.shape[0]):
        top = np.argsort(-itc[i])[:2]
        i2t[i, top] = itm[i, top]
    assert itm.min() > -100
    expected = recall(i2t, data.txt2img.tolist(), data.img2txt, t2i_scores=t2i)
    got = evaluate_retrieval(model, data, tokenizer, max_len, torch.device("cpu"), rerank_k=2)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key


def test_itm_rerank_keeps_the_itc_top_k_on_top(tiny_config, setup):
    model, tokenizer, max_len = setup
    data = retrieval_split(tiny_config.world.path, "test", limit=6)
    sim = torch.randn(len(data.images), len(data.texts), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = model.encode_image(data.images).tokens
    t2i, i2t = itm_rerank(
        model, sim, tokens, data.texts, tokenizer, max_len, torch.device("cpu"), k=2
    )
    # each query's two best candidates by ITC stay its two best after re-ranking
    for text in range(sim.shape[1]):
        assert set(t2i[:, text].topk(2).indices.tolist()) == set(
            sim[:, text].topk(2).indices.tolist()
        )
    for image in range(sim.shape[0]):
        assert set(i2t[image].topk(2).indices.tolist()) == set(sim[image].topk(2).indices.tolist())


def test_images_reach_the_model_through_the_encode_hook(tiny_config, setup):
    """The hook gets each image with its index in the split; a hook that swaps the images'
    outputs swaps the ranking."""
    model, tokenizer, max_len = setup
    data = retrieval_split(tiny_config.world.path, "test", limit=6)
    seen = []

    def encode(inputs):
        seen.append(inputs.ids.clone())
        return model.encode_image(inputs.image)

    device = torch.device("cpu")
    plain = evaluate_retrieval(model, data, tokenizer, max_len, device)
    assert evaluate_retrieval(model, data, tokenizer, max_len, device, encode=encode) == plain
    assert torch.equal(torch.cat(seen), torch.arange(6))

    def swapped(inputs):
        return model.encode_image(inputs.image.flip(0))

    scores = itc_scores(model, data, tokenizer, max_len)[::-1]
    expected = recall(scores, data.txt2img.tolist(), data.img2txt)
    got = evaluate_retrieval(model, data, tokenizer, max_len, device, encode=swapped)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key
