"""Visual concepts: the tagger scores a word by its best real token, the likeliest words become
tokens weighted by their probability, embedded with the text encoder's own word embeddings;
the tagging loss is binary cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ash_neuro.config import ConceptConfig
from ash_neuro.errors import AshError, ConfigError
from ash_neuro.losses.concept_tagging import concept_tagging_loss
from ash_neuro.models.outputs import VisualFeatures
from ash_neuro.models.visual_concepts import VisualConcepts
from tests.conftest import small_tokenizer

WORDS = ["red", "blue", "cube", "ball", "green"]


def concepts(count: int = 2, dim: int = 4, width: int = 6) -> tuple[VisualConcepts, nn.Embedding]:
    torch.manual_seed(0)
    tokenizer = small_tokenizer()
    module = VisualConcepts(ConceptConfig("tagged", count=count, vocabulary=WORDS), dim, width)
    module.set_words(tokenizer)
    return module, nn.Embedding(len(tokenizer), width)


def test_words_are_their_word_pieces_and_a_missing_vocabulary_is_refused():
    module, _ = concepts()
    tokenizer = small_tokenizer()
    for row, word in enumerate(WORDS):
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert module.piece_ids[row, : len(pieces)].tolist() == pieces
        assert (module.piece_ids[row, len(pieces) :] == 0).all()
    with pytest.raises(ConfigError, match="vocabulary is empty"):
        VisualConcepts(ConceptConfig("tagged"), 4, 6)
    unset = VisualConcepts(ConceptConfig("tagged", vocabulary=WORDS), 4, 6)
    with pytest.raises(AshError, match="no WordPiece ids"):
        unset(VisualFeatures(torch.randn(1, 3, 4)), nn.Embedding(64, 6))


def test_a_word_of_too_many_pieces_or_unknown_to_the_tokenizer_is_refused():
    module = VisualConcepts(ConceptConfig("tagged", vocabulary=["hexagonal"], max_pieces=4), 4, 6)
    with pytest.raises(ConfigError, match="max_pieces=4"):
        module.set_words(small_tokenizer())
    module = VisualConcepts(ConceptConfig("tagged", vocabulary=["red", "zzqxv"]), 4, 6)
    with pytest.raises(ConfigError, match="'zzqxv'.*UNK"):
        module.set_words(small_tokenizer())


def test_the_tagger_takes_the_best_real_token_and_feeds_the_likeliest_words():
    module, embeddings = concepts(count=2)
    tokens = torch.randn(3, 4, 4)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False], [True] * 4])
    out, logits = module(VisualFeatures(tokens, mask=mask), embeddings)
    # oracle: per token scores, padded tokens ignored, max over tokens
    scores = (tokens @ module.tagger.weight.T + module.tagger.bias).detach().numpy()
    scores[~mask.numpy()] = -np.inf
    np.testing.assert_allclose(logits.detach().numpy(), scores.max(axis=1), rtol=1e-5)
    # the two likeliest words per image, scaled by their probability
    probability = 1 / (1 + np.exp(-scores.max(axis=1)))
    words = module.norm(module.proj(module.word_vectors(embeddings))).detach().numpy()
    for b in range(3):
        best = np.argsort(-probability[b])[:2]
        expected = words[best] * probability[b, best, None]
        np.testing.assert_allclose(out[b].detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_word_vectors_average_the_pieces_of_the_text_embedding_table():
    module, embeddings = concepts()
    with torch.no_grad():
        embeddings.weight.copy_(torch.arange(embeddings.num_embeddings).float()[:, None])
    vectors = module.word_vectors(embeddings)
    for row in range(len(WORDS)):
        pieces = [i for i in module.piece_ids[row].tolist() if i != 0]
        assert vectors[row, 0].item() == pytest.approx(sum(pieces) / len(pieces))


def test_gradient_reaches_the_shared_word_embeddings_and_the_tagger():
    module, embeddings = concepts()
    out, logits = module(VisualFeatures(torch.randn(2, 3, 4)), embeddings)
    (out.sum() + logits.sum()).backward()
    assert embeddings.weight.grad.abs().sum() > 0 and module.tagger.weight.grad.abs().sum() > 0


def test_tagging_loss_is_binary_cross_entropy():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    def bce(x: float, y: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = (bce(2, 1) + bce(-1, 0) + bce(0, 0) + bce(3, 1)) / 4
    assert concept_tagging_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
