"""Moving a scratch BERT to another tokenizer's vocabulary (`finetune.tokenizer`: a WordPiece
fitted to the fine-tuning data by `python -m ash_neuro.data.tokenizer`).

The rows that depend on the vocabulary, the word embeddings and the MLM decoder (weights and
bias), are re-indexed: a token both vocabularies hold keeps its trained row; a new token starts
from the mean of the rows of the pieces the old tokenizer cuts it into (a new whole word
"giraffe" from the old "g", "##ira", ...), so nothing starts from noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

# the backbone's weights indexed by token id (rows; the bias by entry)
VOCABULARY_ROWS = (
    "text_encoder.model.embeddings.word_embeddings.weight",
    "mlm.decoder.weight",
    "mlm.decoder.bias",
)


def token_sources(old: Any, new: Any) -> list[list[int]]:
    """For each id of the `new` tokenizer, the ids of `old` whose rows initialise it."""
    old_vocab = old.get_vocab()
    sources = []
    for token, _ in sorted(new.get_vocab().items(), key=lambda item: item[1]):
        if token in old_vocab:
            sources.append([old_vocab[token]])
            continue
        surface = token[2:] if token.startswith("##") else token
        pieces = old(surface, add_special_tokens=False)["input_ids"]
        sources.append(pieces or [old.unk_token_id])
    return sources


def move_vocabulary(state: Mapping[str, Tensor], old: Any, new: Any) -> dict[str, Tensor]:
    """A backbone's `state` (of a network built for `old`) with its vocabulary rows moved to
    `new`'s ids (see the module docstring); the other weights unchanged."""
    sources = token_sources(old, new)
    moved = dict(state)
    for key in VOCABULARY_ROWS:
        rows = state[key]
        moved[key] = torch.stack([rows[ids].mean(dim=0) for ids in sources])
    return moved
