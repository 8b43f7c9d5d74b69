"""VQA v2 (visualqa.org): questions + annotations JSON, with soft answer scores.

    questions:    {"data_subtype": "val2014", "questions": [{"image_id": 42, "question":
                  "What color is ...?", "question_id": 42000}, ...]}
    annotations:  {"annotations": [{"question_id": 42000, "image_id": 42, "answer_type":
                  "other", "multiple_choice_answer": "red", "answers": [{"answer": "red",
                  "answer_confidence": "yes", "answer_id": 1}, ... 10 annotators]}, ...]}
    images:       <images>/COCO_<data_subtype>_<image_id as 12 digits>.jpg

Layout under root (override with questions=, annotations=, images=):
    v2_OpenEnded_mscoco_<sub>_questions.json, v2_mscoco_<sub>_annotations.json, images in
    root/<sub>, where <sub> is train2014 (split "train") or val2014 (split "val"); the test
    split has no public annotations (it is scored by the evaluation server).

Answer vocabulary: the answers in an answer list file (answers=: a JSON list of strings, or one
answer per line), else the top_k most frequent multiple-choice answers of the training
annotations (vocab_annotations=, by default the train annotations under root, so that every
split shares one vocabulary; ties go alphabetically). `write_answer_list` saves a vocabulary.
Answers are compared lower-cased with whitespace collapsed.

Each question is one VQARecord: `scores` holds min(#annotators giving the answer / 3, 1) for
every vocabulary answer given (the VQA accuracy target), `answer` the multiple-choice answer,
`family` the answer type (`vqa_families`: yes/no, number, other; -1 when absent). A question
whose multiple-choice answer is outside the vocabulary is an "unknown answer" (skipped and
counted, or stop): skipping these makes an evaluation's accuracy that of the in-vocabulary
questions, so the summary says how many there were.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ash_neuro.data.readers.common import (
    FileSource,
    ReaderError,
    ReadOptions,
    json_list,
    read_json,
    require_file,
    split_name,
)
from ash_neuro.data.records import VQARecord

SPLITS = {"train": "train2014", "val": "val2014", "train2014": "train2014", "val2014": "val2014"}
ANSWER_TYPES = ("yes/no", "number", "other")
DEFAULT_TOP_K = 3129  # the vocabulary size most VQA v2 models use
AGREEING_FOR_FULL_SCORE = 3
QUESTIONS_WHAT = (
    "VQA v2 questions JSON (an object with questions[] of image_id, question, question_id)"
)
ANNOTATIONS_WHAT = (
    "VQA v2 annotations JSON (an object with annotations[] of question_id, answers[], "
    "multiple_choice_answer)"
)


def normalise_answer(answer: str) -> str:
    return " ".join(answer.lower().split())


def questions_file(sub: str) -> str:
    return f"v2_OpenEnded_mscoco_{sub}_questions.json"


def annotations_file(sub: str) -> str:
    return f"v2_mscoco_{sub}_annotations.json"


def read_answer_list(path: Path) -> tuple[str, ...]:
    """A vocabulary file: a JSON list of strings (`.json`), or one answer per line."""
    what = "an answer list (a JSON list of strings, or one answer per line)"
    require_file(path, what)
    if path.suffix == ".json":
        data = read_json(path, what)
        if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
            raise ReaderError(f"{path}: expected a JSON list of answer strings")
    else:
        with open(path, encoding="utf-8") as f:
            data = [line for line in f.read().splitlines() if line.strip()]
    answers = [normalise_answer(a) for a in data]
    if not answers:
        raise ReaderError(f"{path}: the answer list is empty")
    repeated = [a for a, n in Counter(answers).items() if n > 1]
    if repeated:
        raise ReaderError(f"{path}: the answer list repeats {repeated[0]!r}")
    return tuple(answers)


def write_answer_list(answers: Sequence[str], path: str | Path) -> None:
    """Save a vocabulary (e.g. a train source's `answers`) as a JSON list for answers=."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(list(answers), f, indent=0)


def top_answers(annotations: list, top_k: int) -> tuple[str, ...]:
    """The top_k most frequent multiple-choice answers (ties alphabetical); records without
    one are left out here and reported when their own split is read."""
    counts = Counter(
        normalise_answer(a["multiple_choice_answer"])
        for a in annotations
        if isinstance(a, dict) and isinstance(a.get("multiple_choice_answer"), str)
    )
    ranked = sorted(counts, key=lambda answer: (-counts[answer], answer))
    return tuple(ranked[:top_k])


class VQAv2(FileSource):
    kind = "vqa_v2"

    def __init__(
        self,
        root: str | Path,
        split: str,
        options: ReadOptions,
        *,
        questions: str | Path | None = None,
        annotations: str | Path | None = None,
        images: str | Path | None = None,
        answers: str | Path | None = None,
        top_k: int = DEFAULT_TOP_K,
        vocab_annotations: str | Path | None = None,
    ) -> None:
        super().__init__(root, split, options)
        sub = split_name(self.kind, split, SPLITS)
        q_path = self.path(questions, questions_file(sub))
        a_path = self.path(annotations, annotations_file(sub))
        q_data = read_json(q_path, QUESTIONS_WHAT)
        question_list = json_list(q_data, "questions", q_path, QUESTIONS_WHAT)
        a_data = read_json(a_path, ANNOTATIONS_WHAT)
        annotation_list = json_list(a_data, "annotations", a_path, ANNOTATIONS_WHAT)
        if isinstance(q_data.get("data_subtype"), str) and q_data["data_subtype"]:
            sub = q_data["data_subtype"]  # names the image files
        image_dir = self.path(images, sub)

        if answers:
            self.answers = read_answer_list(self.path(answers, ""))
        else:
            if not isinstance(top_k, int) or top_k < 1:
                raise ReaderError(f"top_k={top_k!r}: give a positive number of answers")
            v_path = self.path(vocab_annotations, annotations_file("train2014"))
            if v_path.resolve() == a_path.resolve():
                vocab_source = annotation_list
            else:
                what = ANNOTATIONS_WHAT + " of the training split, or pass answers=<answer list>"
                vocab_source = json_list(read_json(v_path, what), "annotations", v_path, what)
            self.answers = top_answers(vocab_source, top_k)
        self.vqa_families = ANSWER_TYPES
        vocabulary = {answer: i for i, answer in enumerate(self.answers)}

        by_question: dict[int, int] = {}
        for row, annotation in enumerate(annotation_list):
            if isinstance(annotation, dict) and isinstance(annotation.get("question_id"), int):
                by_question[annotation["question_id"]] = row

        for row, question in enumerate(question_list):
            where = f"{q_path} questions[{row}]"
            got = self.fields(question, where, image_id=int, question=str, question_id=int)
            if got is None:
                continue
            image_id, text, question_id = got
            if question_id not in by_question:
                detail = f"question_id {question_id} has no annotation in {a_path}"
                self.report("malformed", where, detail)
                continue
            a_row = by_question[question_id]
            a_where = f"{a_path} annotations[{a_row}]"
            scored = self._scores(annotation_list[a_row], a_where, vocabulary)
            if scored is None:
                continue
            answer, scores, family = scored
            image_path = image_dir / f"COCO_{sub}_{image_id:012d}.jpg"
            if (found := self.image_indices([image_path], where)) is None:
                continue
            self._vqa.append(VQARecord(found[0], text.strip(), answer, family, scores))

    def _scores(
        self, annotation, where: str, vocabulary: dict[str, int]
    ) -> tuple[int, dict[int, float], int] | None:
        """(answer index, soft scores, family) of one annotation, or None once reported."""
        got = self.fields(annotation, where, answers=list, multiple_choice_answer=str)
        if got is None:
            return None
        given, choice = got
        if not all(isinstance(a, dict) and isinstance(a.get("answer"), str) for a in given):
            self.report("malformed", where, "every answers[] entry needs a string `answer`")
            return None
        choice = normalise_answer(choice)
        if choice not in vocabulary:
            detail = f"answer {choice!r} is not in the answer vocabulary ({len(vocabulary)})"
            self.report("unknown answer", where, detail)
            return None
        agreeing = Counter(normalise_answer(a["answer"]) for a in given)
        scores = {
            vocabulary[a]: min(n / AGREEING_FOR_FULL_SCORE, 1.0)
            for a, n in agreeing.items()
            if a in vocabulary
        }
        answer_type = annotation.get("answer_type")
        family = ANSWER_TYPES.index(answer_type) if answer_type in ANSWER_TYPES else -1
        return vocabulary[choice], scores, family
