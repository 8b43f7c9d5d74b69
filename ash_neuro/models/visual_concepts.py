"""Visual concepts (ViCHA, arXiv 2208.13628): image-level keywords, embedded with the text
encoder's word embeddings, fed to the network beside the visual tokens.

Registered as "tagged" (and "none"). ViCHA picks each image's concepts with CLIP: the 15 words
of a vocabulary (mined from its captions) most similar to the image, computed offline for every
image, training and test alike. No CLIP weights are available here, so a small tagger plays
CLIP's part inside the network and is taught at pre-training what the concepts of a training
image are (`model.concepts.source`: the world's scene ground truth or words mined from the
training captions, `ash_neuro/data/concepts.py`; the `concept_tagging` loss). Every image,
training or test, then gets its concepts from its pixels alone: no evaluation or deployment
reads an annotation, so no test label leaks into the inputs.

    tagger    per ANN token, one score per concept word (a linear map); an image's score of a
              word is the maximum over its real tokens (a word is present if some token shows
              it), `concept_logits` `(B, V)`
    select    the `count` words of highest probability p = sigmoid(score) per image
    embed     each word's WordPieces through the text encoder's embedding table (shared with
              it, not a copy), averaged, projected to the visual width and normalised; each
              token is scaled by its p, so an unlikely concept weighs little

The concept tokens are appended after the adapter's tokens, so the fusion encoder and the ITC
pooling read them while the spiking encoder, and with it the NIR export and the Lava
deployment, never do (ViCHA feeds them to its ViT's input; here that input is also the spiking
encoder's). The word pieces of the vocabulary are a buffer of the weights, written once by
`set_words` when pre-training builds the network (`ash_neuro.train`) and restored by every
checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ash_neuro.config import ConceptConfig
from ash_neuro.errors import AshError, ConfigError
from ash_neuro.models.outputs import VisualFeatures
from ash_neuro.registry import VISUAL_CONCEPTS


@VISUAL_CONCEPTS.register("tagged")
class VisualConcepts(nn.Module):
    """(`VisualFeatures`, word embeddings) -> (concept tokens `(B, count, dim)`, concept logits
    `(B, V)`)."""

    def __init__(
        self, cfg: ConceptConfig, dim: int, text_width: int, pad_token_id: int = 0
    ) -> None:
        super().__init__()
        if not cfg.vocabulary:
            raise ConfigError(
                "model.concepts.vocabulary is empty: pre-training (python -m ash_neuro.train) "
                "fills it from model.concepts.source, or list the words yourself"
            )
        self.words = tuple(cfg.vocabulary)
        self.count = min(cfg.count, len(self.words))
        self.pad_token_id = pad_token_id
        pieces = torch.full((len(self.words), cfg.max_pieces), pad_token_id, dtype=torch.long)
        self.register_buffer("piece_ids", pieces)
        self.tagger = nn.Linear(dim, len(self.words))
        self.proj = nn.Linear(text_width, dim)
        self.norm = nn.LayerNorm(dim)

    def set_words(self, tokenizer) -> None:
        """Write each concept word's WordPiece ids (the tokenizer of the text encoder)."""
        limit = self.piece_ids.shape[1]
        ids = tokenizer(list(self.words), add_special_tokens=False)["input_ids"]
        for row, (word, pieces) in enumerate(zip(self.words, ids, strict=True)):
            if tokenizer.unk_token_id in pieces:
                raise ConfigError(
                    f"model.concepts: the tokenizer does not know the word {word!r} (it reads "
                    "as [UNK]); leave it out of model.concepts.vocabulary"
                )
            if not 1 <= len(pieces) <= limit:
                raise ConfigError(
                    f"model.concepts: the word {word!r} is {len(pieces)} WordPieces; "
                    f"model.concepts.max_pieces={limit} allows 1 to {limit}"
                )
            self.piece_ids[row] = self.pad_token_id
            self.piece_ids[row, : len(pieces)] = torch.tensor(pieces)

    def word_vectors(self, word_embeddings: nn.Embedding) -> Tensor:
        """`(V, text_width)`: the mean embedding of each word's pieces."""
        real = self.piece_ids != self.pad_token_id
        if not bool(real[:, 0].all()):
            raise AshError(
                "the concept words have no WordPiece ids: build the network with "
                "ash_neuro.train (which calls set_words) or load it from its checkpoint"
            )
        vectors = word_embeddings(self.piece_ids) * real.unsqueeze(-1)
        return vectors.sum(dim=1) / real.sum(dim=1, keepdim=True)

    def forward(
        self, features: VisualFeatures, word_embeddings: nn.Embedding
    ) -> tuple[Tensor, Tensor]:
        scores = self.tagger(features.tokens)  # (B, n, V)
        if features.mask is not None:
            scores = scores.masked_fill(~features.mask.unsqueeze(-1), float("-inf"))
        logits = scores.amax(dim=1)
        probability, chosen = torch.sigmoid(logits).topk(self.count, dim=1)
        words = self.norm(self.proj(self.word_vectors(word_embeddings)))  # (V, dim)
        return words[chosen] * probability.unsqueeze(-1), logits


@VISUAL_CONCEPTS.register("none")
def no_visual_concepts(
    cfg: ConceptConfig, dim: int, text_width: int, pad_token_id: int = 0
) -> None:
    """No visual concepts."""
    return None
