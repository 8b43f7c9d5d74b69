"""A BERT-style WordPiece tokenizer trained on the world's own text (no download).

The tokenizer lies beside the world file (`data/world.h5` -> `data/world.tokenizer.json`) and
loads as a `transformers.PreTrainedTokenizerFast` whose special tokens are [PAD]=0, [UNK]=1,
[CLS]=2, [SEP]=3, [MASK]=4; encoding adds [CLS] ... [SEP] like BERT.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ash_neuro.atomic import replace_atomically
from ash_neuro.errors import AshError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MODEL_MAX_LENGTH = 512


def tokenizer_path_for(world_path: str | Path) -> Path:
    """Where the tokenizer of a world file lives: `<stem>.tokenizer.json` beside it."""
    world_path = Path(world_path)
    return world_path.with_name(world_path.stem + ".tokenizer.json")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Fit a BERT-style WordPiece tokenizer (lower-casing, accent stripping) to `texts`.

    The vocabulary is the special tokens, every character (word-initial and `##` continuation,
    so that no word is ever [UNK]), then whole words by descending corpus count (ties
    alphabetical) up to `vocab_size`. We count with the tokenizer's own normaliser and
    pre-tokeniser instead of `WordPieceTrainer` because that trainer numbers tokens in hash-map
    order, so the same corpus gives different ids in every process; the world's closed,
    template-made language needs whole words, not learned merges.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    if len(vocab) > vocab_size:
        raise AshError(
            f"world.vocab_size={vocab_size} cannot hold the {len(vocab)} special and character "
            "tokens of the corpus; raise it"
        )
    known = set(vocab)
    ranked = sorted((w for w in counts if w not in known), key=lambda w: (-counts[w], w))
    vocab += ranked[: vocab_size - len(vocab)]
    tokenizer = Tokenizer(
        models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]")
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tokenizer


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """A hash of the tokenizer's definition (its canonical JSON), what a world file records of
    the tokenizer beside it."""
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def world_tokenizer_matches(world_path: str | Path) -> bool:
    """Whether the tokenizer file beside a world is the one the world was written with."""
    from ash_neuro.data.world_file import read_world_info

    path = tokenizer_path_for(world_path)
    if not path.is_file():
        return False
    try:
        found = tokenizer_fingerprint(Tokenizer.from_file(str(path)))
    except Exception:  # tokenizers raises a bare Exception on malformed JSON
        return False
    return found == read_world_info(world_path).tokenizer_fingerprint


def load_world_tokenizer(world_path: str | Path) -> PreTrainedTokenizerFast:
    """The tokenizer beside a world file, after checking it is the world's own."""
    path = tokenizer_path_for(world_path)
    tokenizer = load_tokenizer(path)
    if not world_tokenizer_matches(world_path):
        raise AshError(
            f"{path} is not the tokenizer {world_path} was written with (an interrupted "
            f"generation?); rebuild it: `python -m ash_neuro.data.generate --out {world_path}`"
        )
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write atomically (a temporary file renamed into place)."""
    with replace_atomically(path) as temporary:
        tokenizer.save(str(temporary))


def _fast_tokenizer(tokenizer: Tokenizer, special: dict[str, str], max_length: int):
    # imported here: transformers takes seconds to import and the generator CLI never needs it
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=max_length, **special
    )


WORLD_SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """The world's tokenizer file as a `transformers` fast tokenizer."""
    path = Path(path)
    if not path.is_file():
        raise AshError(
            f"tokenizer file {path} not found; it is written beside the world file by "
            "`python -m ash_neuro.data.generate` (or `make world`)"
        )
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise AshError(f"{path} is not a readable tokenizer file ({exc})") from None
    return as_fast_tokenizer(tokenizer)


def as_fast_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """A tokenizer of `train_tokenizer` as the `transformers` fast tokenizer the models use."""
    return _fast_tokenizer(tokenizer, WORLD_SPECIAL_TOKENS, MODEL_MAX_LENGTH)


def tokenizer_record(tokenizer: PreTrainedTokenizerFast) -> dict:
    """A fast tokenizer as plain strings (what a checkpoint carries): its `tokenizers` JSON,
    its special tokens and maximum length."""
    special = {
        key: str(value)
        for key, value in tokenizer.special_tokens_map.items()
        if isinstance(value, str)
    }
    return {
        "json": tokenizer.backend_tokenizer.to_str(),
        "special_tokens": special,
        "model_max_length": int(min(tokenizer.model_max_length, 2**31 - 1)),
    }


def tokenizer_from_record(record: dict) -> PreTrainedTokenizerFast:
    """The tokenizer `tokenizer_record` wrote; AshError if the record is not one."""
    try:
        tokenizer = Tokenizer.from_str(record["json"])
        special = dict(record["special_tokens"])
        max_length = int(record["model_max_length"])
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
        raise AshError(f"the stored tokenizer is not readable ({exc})") from None
    return _fast_tokenizer(tokenizer, special, max_length)


if __name__ == "__main__":  # fitting to a data set's text lives in its own module
    from ash_neuro.data.fit_tokenizer import main

    main()
