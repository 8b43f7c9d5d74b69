"""Visual concepts' ground truth: the words a training image's concept tagger should predict
(`models/visual_concepts.py`, trained by the `concept_tagging` loss), from one of two sources
(`model.concepts.source`):

    scene     the procedural world's scene graph: every object's colour, shape, size and
              texture name (the vocabulary: every such name, 20 words)
    captions  words mined from the training captions (ViCHA mines its concept vocabulary from
              its captions too, then lets CLIP pick each image's words): lower-cased letter
              runs, a plural folded onto its singular when the singular occurs ("boxes" ->
              "box"), function words (`STOPWORDS`) dropped; the vocabulary is the
              `vocabulary_size` words found in the most training images, each in at least
              `min_images` images and at most a `max_share` of them (words of nearly every
              caption, "a" or "there", describe no image); an image's concepts are the
              vocabulary words of any of its captions

`captions` needs nothing but captions, so it is the offline option for a real data set
(`data.kind: coco` or `flickr30k` at pre-training): no scene graph, no CLIP. Only pre-training
reads these targets; every later command lets the tagger find an image's concepts from its
pixels.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from torch.utils.data import Dataset

from ash_neuro.config import Config
from ash_neuro.data.records import Source
from ash_neuro.errors import ConfigError

SCENE_ATTRIBUTES = ("colour", "shape", "size", "texture")
# the world's vocabularies (`world_file.vocabularies`) of each scene attribute
SCENE_VOCABULARIES = {
    "colour": "colours",
    "shape": "shapes",
    "size": "sizes",
    "texture": "textures",
}
# English function words: never a concept, however rare in a corpus
STOPWORDS = frozenset(
    """a an the this that these those there here it its is are was were be been being has have
    had do does did of to in on at by for from with without into onto over under and or but
    not no nor as than then so such very too also just only some any each every all both
    either neither other another which who whom whose what where when how why i you he she we
    they me him her us them my your his our their""".split()
)
_WORD = re.compile(r"[a-z]+")


def scene_vocabulary(vocabularies: Mapping[str, Sequence[str]]) -> list[str]:
    """The scene source's concept words: every colour, shape, size and texture name of the
    world's `vocabularies`, in that order."""
    return [word for a in SCENE_ATTRIBUTES for word in vocabularies[SCENE_VOCABULARIES[a]]]


def scene_concepts(objects: Iterable[Mapping[str, str]]) -> set[str]:
    """The concept words of one scene: its objects' attribute names (`SCENE_ATTRIBUTES`)."""
    return {obj[attribute] for obj in objects for attribute in SCENE_ATTRIBUTES}


def caption_words(text: str) -> list[str]:
    """A caption's lower-cased letter runs, function words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def fold_plural(word: str, known: Iterable[str] | set[str]) -> str:
    """`word`'s singular when it is a plural ("-es" or "-s") whose singular is `known`."""
    for suffix in ("es", "s"):
        if word.endswith(suffix) and word[: -len(suffix)] in known:
            return word[: -len(suffix)]
    return word


def mine_vocabulary(
    captions_per_image: Sequence[Sequence[str]],
    size: int,
    min_images: int = 5,
    max_share: float = 0.5,
) -> list[str]:
    """The `size` words found in the most images' captions (ties: alphabetical), each in at
    least `min_images` images and at most `max_share` of them; plurals folded."""
    words = [{w for text in texts for w in caption_words(text)} for texts in captions_per_image]
    known = set().union(*words) if words else set()
    images: Counter[str] = Counter()
    for found in words:
        images.update({fold_plural(w, known) for w in found})
    limit = max_share * len(captions_per_image)
    kept = [w for w, n in images.items() if min_images <= n <= limit]
    return sorted(kept, key=lambda w: (-images[w], w))[:size]


def caption_concepts(captions: Iterable[str], vocabulary: Sequence[str]) -> set[str]:
    """The vocabulary words of an image's captions (plurals folded onto vocabulary words)."""
    vocab = set(vocabulary)
    return {fold_plural(w, vocab) for text in captions for w in caption_words(text)} & vocab


def captions_by_image(source: Source) -> list[list[str]]:
    """Every caption of each image of `source`, by image index."""
    texts: list[list[str]] = [[] for _ in range(len(source))]
    for record in source.captions():
        texts[record.image].append(record.text)
    return texts


def scene_objects(source: Source) -> list[list[dict[str, str]]]:
    """Each image's objects as {attribute: name}, from the world's objects table."""
    if not hasattr(source, "table") or not hasattr(source, "vocabularies"):
        raise ConfigError(
            f"model.concepts.source=scene needs the procedural world's scene graphs; "
            f"{type(source).__name__} has none: use model.concepts.source=captions"
        )
    table, vocab = source.table("objects"), source.vocabularies
    objects: list[list[dict[str, str]]] = [[] for _ in range(len(source))]
    for row, image in enumerate(table["image"]):
        objects[int(image)].append(
            {a: vocab[SCENE_VOCABULARIES[a]][int(table[a][row])] for a in SCENE_ATTRIBUTES}
        )
    return objects


def with_concept_vocabulary(cfg: Config, source: Source) -> Config:
    """`cfg` with `model.concepts.vocabulary` filled from its source over the training split
    `source` (unchanged when concepts are off or the vocabulary is given). Captions are mined
    from the images pre-training reads only (`train.image_fraction`): a data-efficiency run
    learns nothing, not even a word list, from the images it leaves out."""
    concepts = cfg.model.concepts
    if concepts.kind == "none" or concepts.vocabulary:
        return cfg
    if concepts.source == "scene":
        scene_objects(source)  # the one-line error for a source without scene graphs
        words = scene_vocabulary(source.vocabularies)
    else:
        images = math.ceil(cfg.train.image_fraction * len(source))
        words = mine_vocabulary(
            captions_by_image(source)[:images],
            concepts.vocabulary_size,
            concepts.min_images,
            concepts.max_share,
        )
        if not words:
            raise ConfigError(
                f"model.concepts.source=captions found no word in at least "
                f"{concepts.min_images} and at most {concepts.max_share:.0%} of the "
                f"{images} training images; lower model.concepts.min_images"
            )
    model = dataclasses.replace(cfg.model, concepts=dataclasses.replace(concepts, vocabulary=words))
    return dataclasses.replace(cfg, model=model)


def concept_targets(cfg: Config, source: Source) -> np.ndarray:
    """`(images, V)` float32 in {0, 1}: which vocabulary word each image of `source` shows,
    by `model.concepts.source`."""
    vocabulary = cfg.model.concepts.vocabulary
    if cfg.model.concepts.source == "scene":
        per_image = [scene_concepts(objects) for objects in scene_objects(source)]
    else:
        per_image = [caption_concepts(texts, vocabulary) for texts in captions_by_image(source)]
    column = {word: j for j, word in enumerate(vocabulary)}
    targets = np.zeros((len(per_image), len(vocabulary)), np.float32)
    for image, words in enumerate(per_image):
        targets[image, [column[w] for w in words if w in column]] = 1.0
    return targets


class WithConcepts(Dataset):
    """A caption dataset whose items also carry `concepts` `(V,)` float32, their image's
    targets; `set_epoch` reaches the wrapped dataset."""

    def __init__(self, dataset: Dataset, targets: np.ndarray) -> None:
        self.dataset, self.targets = dataset, targets

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {**item, "concepts": self.targets[int(item["image_id"])]}

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def with_concept_targets(dataset: Dataset, cfg: Config, source: Source) -> Dataset:
    """The pre-training dataset, with concept targets when the network has visual concepts."""
    if cfg.model.concepts.kind == "none":
        return dataset
    return WithConcepts(dataset, concept_targets(cfg, source))
