"""`python -m ash_neuro.data.tokenizer`: fit the deterministic WordPiece tokenizer
(`tokenizer.train_tokenizer`) to the text of a data set, read through its reader.

Every sentence of the configured split is counted (captions, questions, hypotheses, referring
expressions, statements: whatever the format holds), so a real corpus gets whole-word tokens
for its own words instead of the world's character pieces. Fine-tune the scratch BERT with it
(`finetune.tokenizer=FILE`: the embeddings move to the new vocabulary and the checkpoint carries
the tokenizer):

    python -m ash_neuro.data.tokenizer --config configs/finetune.yaml --vocab-size 8000 \\
        --out runs/vqa.tokenizer.json data.kind=vqa_v2 data.root=/data/vqa
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from ash_neuro.config import load_config
from ash_neuro.data.records import Source
from ash_neuro.errors import AshError, cli_entry

# the text field of each record table of a `records.Source`
TEXT_FIELDS = {
    "captions": "text",
    "vqa": "question",
    "entailment": "hypothesis",
    "grounding": "text",
    "nlvr": "text",
}


def source_texts(source: Source) -> Iterator[str]:
    """Every sentence of every record table `source` holds."""
    for table, field in TEXT_FIELDS.items():
        for record in getattr(source, table)():
            yield getattr(record, field)


def fit_data_tokenizer(source: Source, vocab_size: int):
    """The WordPiece tokenizer fitted to `source`'s sentences (`tokenizers.Tokenizer`)."""
    from ash_neuro.data.tokenizer import train_tokenizer

    texts = list(source_texts(source))
    if not texts:
        raise AshError("the data set holds no sentence to fit a tokenizer to")
    return train_tokenizer(texts, vocab_size)


@cli_entry
def main(argv: list[str] | None = None) -> Path:
    from ash_neuro.data.sources import configured_source
    from ash_neuro.data.tokenizer import save_tokenizer

    parser = argparse.ArgumentParser(prog="python -m ash_neuro.data.tokenizer", description=__doc__)
    parser.add_argument("--config", default="configs/finetune.yaml", help="YAML run config")
    parser.add_argument("--split", default="train", help="the split whose text is counted")
    parser.add_argument("--vocab-size", type=int, default=8000, help="tokens, specials included")
    parser.add_argument("--out", required=True, help="tokenizer file to write (JSON)")
    parser.add_argument("overrides", nargs="*", help="e.g. data.kind=vqa_v2 data.root=/data/vqa")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    tokenizer = fit_data_tokenizer(configured_source(cfg, args.split), args.vocab_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, out)
    print(f"{tokenizer.get_vocab_size()} tokens fitted to {cfg.data.kind} {args.split}: {out}")
    return out
