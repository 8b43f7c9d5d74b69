"""Entity vocabularies for CMAL's anchor points: which caption words name which entity.

An anchor point is an entity present in both modalities: a caption word (or a run of words,
"traffic light") that names an entity, and an object of the image tagged with it
(`ash_neuro/data/anchors.py`). A `Lexicon` holds the entity vocabulary (what the associative
mapping classification predicts, so its size is the AMC layer's `model.fusion.amc_entities`)
and the surface forms of each entity: its name, synonyms and plurals, lower case.

    world  15 entities: the 7 shapes and 8 colours of the procedural world; every synonym and
           plural the caption generator uses ("ball", "discs", "boxes", "plus") names its
           shape, read from the generator's own word lists so that the two cannot drift
    coco   COCO's 80 object categories (what instances.json tags, RefCOCO included) with their
           plurals and the words captions most often use for them ("man", "people" -> person;
           "bike" -> bicycle; "table" -> dining table). Ambiguous words stay in ("orange" the
           fruit and the colour, "mouse" the animal and the device): the tag side decides,
           since a word is an anchor only where the image holds an object with that tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from ash_neuro.data.annotations.phrasing import PLURALS, SHAPE_WORDS
from ash_neuro.data.scene import COLOURS, SHAPES


@dataclass(frozen=True)
class Lexicon:
    """`entities`: the entity vocabulary; `forms`: word sequence (lower case) -> entity index."""

    name: str
    entities: tuple[str, ...]
    forms: dict[tuple[str, ...], int] = field(repr=False)

    @cached_property
    def max_words(self) -> int:
        """The longest surface form, in words."""
        return max(len(form) for form in self.forms)

    def index(self, name: str) -> int | None:
        """The entity index of a tag name (None: not in this vocabulary)."""
        return self._indices.get(name.lower())

    @cached_property
    def _indices(self) -> dict[str, int]:
        return {entity: i for i, entity in enumerate(self.entities)}


def plural(word: str) -> str:
    """English plural of a noun (the regular rules and the irregular nouns of the lexicons)."""
    irregular = {"knife": "knives", "mouse": "mice", "sheep": "sheep", "person": "people"}
    if word in irregular:
        return irregular[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def build_lexicon(name: str, entities: dict[str, Iterable[str]]) -> Lexicon:
    """A lexicon from {entity: every word or phrase that names it}."""
    forms: dict[tuple[str, ...], int] = {}
    for index, names in enumerate(entities.values()):
        for form in names:
            forms.setdefault(tuple(form.lower().split()), index)
    return Lexicon(name, tuple(entities), forms)


def with_plurals(names: Iterable[str]) -> list[str]:
    """Each name and its plural (the last word pluralised)."""
    out = []
    for form in names:
        *head, last = form.split()
        out += [form, " ".join([*head, plural(last)])]
    return out


# The shapes in every word the caption generator uses for them, singular and plural as it
# writes them (`Phrasing.noun_phrase`); the colours as they are.
WORLD = build_lexicon(
    "world",
    {
        **{
            shape: [form for w in SHAPE_WORDS[shape] for form in (w, PLURALS.get(w, w + "s"))]
            for shape in SHAPES
        },
        **{colour: [colour] for colour in COLOURS},
    },
)

# COCO's 80 categories in category-id order, with the words captions use for them.
COCO_WORDS = {
    "person": ["man", "woman", "men", "women", "people", "boy", "girl", "child", "children",
               "kid", "guy", "lady", "player", "skier", "surfer", "skateboarder", "baby"],
    "bicycle": ["bike"],
    "car": ["taxi"],
    "motorcycle": ["motorbike", "motor bike"],
    "airplane": ["plane", "jet", "airliner", "aircraft"],
    "bus": [],
    "train": [],
    "truck": [],
    "boat": ["ship"],
    "traffic light": ["stop light"],
    "fire hydrant": ["hydrant"],
    "stop sign": [],
    "parking meter": [],
    "bench": [],
    "bird": [],
    "cat": ["kitten"],
    "dog": ["puppy"],
    "horse": [],
    "sheep": ["lamb"],
    "cow": ["cattle"],
    "elephant": [],
    "bear": [],
    "zebra": [],
    "giraffe": [],
    "backpack": [],
    "umbrella": [],
    "handbag": ["purse"],
    "tie": ["necktie"],
    "suitcase": ["luggage"],
    "frisbee": [],
    "skis": ["ski"],
    "snowboard": [],
    "sports ball": ["ball", "soccer ball", "tennis ball"],
    "kite": [],
    "baseball bat": ["bat"],
    "baseball glove": ["glove", "mitt"],
    "skateboard": [],
    "surfboard": ["surf board"],
    "tennis racket": ["racket", "racquet"],
    "bottle": [],
    "wine glass": [],
    "cup": ["mug"],
    "fork": [],
    "knife": [],
    "spoon": [],
    "bowl": [],
    "banana": [],
    "apple": [],
    "sandwich": [],
    "orange": [],
    "broccoli": [],
    "carrot": [],
    "hot dog": ["hotdog"],
    "pizza": [],
    "donut": ["doughnut"],
    "cake": [],
    "chair": [],
    "couch": ["sofa"],
    "potted plant": ["plant"],
    "bed": [],
    "dining table": ["table"],
    "toilet": [],
    "tv": ["television"],
    "laptop": [],
    "mouse": [],
    "remote": ["remote control"],
    "keyboard": [],
    "cell phone": ["phone", "cellphone"],
    "microwave": [],
    "oven": [],
    "toaster": [],
    "sink": [],
    "refrigerator": ["fridge"],
    "book": [],
    "clock": [],
    "vase": [],
    "scissors": [],
    "teddy bear": ["teddy"],
    "hair drier": ["hair dryer"],
    "toothbrush": [],
}  # fmt: skip
COCO = build_lexicon(
    "coco", {name: with_plurals([name, *others]) for name, others in COCO_WORDS.items()}
)


def lexicon_for(source: object) -> Lexicon:
    """The lexicon of a data source: the world's for the procedural world, COCO's for the real
    data sets (their objects are COCO categories, and it is the fallback's word list)."""
    from ash_neuro.data.world_file import WorldSource

    return WORLD if isinstance(source, WorldSource) else COCO
