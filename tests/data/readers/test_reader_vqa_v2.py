"""VQA v2 questions + annotations: vocabulary, soft scores, unknown answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reader_fixtures import SIZE, first_batch, is_colour, vqa_v2, write_json

from ash_neuro.data.datasets import VQADataset
from ash_neuro.data.readers import ReaderError, open_dataset_source
from ash_neuro.data.readers.vqa_v2 import write_answer_list


def open_vqa(root, split, **options):
    return open_dataset_source("vqa_v2", root, split, image_size=SIZE, **options)


def test_top_k_vocabulary_comes_from_the_train_answers(tmp_path):
    vqa_v2(tmp_path)
    # multiple-choice answers of train: yes x2, red, 2 -> by count, then alphabetically
    assert open_vqa(tmp_path, "train").answers == ("yes", "2", "red")
    assert open_vqa(tmp_path, "train", top_k=2).answers == ("yes", "2")
    assert open_vqa(tmp_path, "val", top_k=2).answers == ("yes", "2")  # the same for val


def test_soft_scores_are_agreeing_annotators_over_three(tmp_path):
    vqa_v2(tmp_path)
    (tmp_path / "answers.txt").write_text("red\nblue\nyes\nno\n2\n\ngreen\npink\n")
    source = open_vqa(tmp_path, "train", answers="answers.txt")
    assert source.answers == ("red", "blue", "yes", "no", "2", "green", "pink")
    red = source.vqa()[0]
    assert (red.image, red.question, red.answer) == (0, "What color is the cube?", 0)
    # red x4 -> 1, blue x2 -> 2/3, green x1 -> 1/3, "Pink " x3 -> 1 (answers are normalised)
    assert red.scores == pytest.approx({0: 1.0, 1: 2 / 3, 5: 1 / 3, 6: 1.0})
    yes_no = source.vqa()[3]
    assert yes_no.answer == 2 and yes_no.scores == pytest.approx({2: 1.0, 3: 1.0})
    assert [r.family for r in source.vqa()] == [2, 0, 1, 0]  # other, yes/no, number, yes/no
    assert source.vqa_families == ("yes/no", "number", "other")
    assert [r.image for r in source.vqa()] == [0, 0, 1, 1] and len(source) == 2
    assert is_colour(source.image(1), 2)  # COCO_train2014_000000000002.jpg


def test_answer_outside_the_vocabulary_is_an_unknown_answer(tmp_path):
    vqa_v2(tmp_path)
    write_answer_list(["yes", "2"], tmp_path / "answers.json")
    source = open_vqa(tmp_path, "val", answers="answers.json")
    assert [r.question for r in source.vqa()] == []  # giraffe unknown; "no" unknown too
    assert source.skipped == {"unknown answer": 2}
    annotations = tmp_path / "v2_mscoco_val2014_annotations.json"
    assert source.problems[0] == (
        f"{annotations} annotations[0]: answer 'giraffe' is not in the answer vocabulary (2)"
    )
    with pytest.raises(ReaderError, match=r"annotations\[0\]: answer 'giraffe' is not in"):
        open_vqa(tmp_path, "val", answers="answers.json", on_error="stop")
    write_answer_list(["yes", "no", "2"], tmp_path / "answers.json")
    kept = open_vqa(tmp_path, "val", answers="answers.json")
    assert [r.question for r in kept.vqa()] == ["Is it red?"]
    assert kept.vqa()[0].scores == pytest.approx({1: 1.0, 0: 1.0})


def test_malformed_questions_and_annotations(tmp_path):
    vqa_v2(tmp_path)
    q_path = tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json"
    a_path = tmp_path / "v2_mscoco_train2014_annotations.json"
    questions, annotations = json.loads(q_path.read_text()), json.loads(a_path.read_text())
    questions["questions"][1]["question_id"] = 99  # no annotation
    questions["questions"][2]["image_id"] = "2"  # not an integer
    annotations["annotations"][3]["answers"] = [{"answer": 1}]
    write_json(q_path, questions)
    write_json(a_path, annotations)
    source = open_vqa(tmp_path, "train")
    assert [r.question for r in source.vqa()] == ["What color is the cube?"]
    assert source.skipped == {"malformed": 3}
    assert source.problems == [
        f"{q_path} questions[1]: question_id 99 has no annotation in {a_path}",
        f"{q_path} questions[2]: `image_id` is '2'",
        f"{a_path} annotations[3]: every answers[] entry needs a string `answer`",
    ]


def test_missing_image_is_skipped_with_its_question(tmp_path):
    vqa_v2(tmp_path)
    (tmp_path / "val2014" / "COCO_val2014_000000000007.jpg").unlink()
    write_answer_list(["giraffe", "no"], tmp_path / "answers.json")
    source = open_vqa(tmp_path, "val", answers="answers.json")
    assert source.vqa() == [] and source.skipped == {"missing image": 2}
    q_path = tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json"
    assert source.problems[0].startswith(f"{q_path} questions[0]: image ")


def test_missing_files_say_what_they_should_be(tmp_path):
    vqa_v2(tmp_path)
    (tmp_path / "v2_mscoco_val2014_annotations.json").unlink()
    expected = r"v2_mscoco_val2014_annotations.json not found; it should be VQA v2 annotations"
    with pytest.raises(ReaderError, match=expected):
        open_vqa(tmp_path, "val")
    (tmp_path / "v2_mscoco_train2014_annotations.json").rename(tmp_path / "train_ann.json")
    with pytest.raises(ReaderError, match=r"of the training split, or pass answers="):
        open_vqa(tmp_path, "train", annotations="train_ann.json")
    named = open_vqa(
        tmp_path, "train", annotations="train_ann.json", vocab_annotations="train_ann.json"
    )
    assert named.answers == ("yes", "2", "red")
    with pytest.raises(ReaderError, match="vqa_v2 has no split 'test'"):
        open_vqa(tmp_path, "test")


def test_answer_list_files_are_checked(tmp_path):
    vqa_v2(tmp_path)
    write_json(tmp_path / "dup.json", ["yes", "Yes"])
    with pytest.raises(ReaderError, match=r"dup\.json: the answer list repeats 'yes'"):
        open_vqa(tmp_path, "train", answers="dup.json")
    write_json(tmp_path / "obj.json", {"answers": ["yes"]})
    with pytest.raises(ReaderError, match="expected a JSON list of answer strings"):
        open_vqa(tmp_path, "train", answers="obj.json")


def test_vqa_dataset_batches_soft_scores(tmp_path, tokenizer):
    vqa_v2(tmp_path)
    source = open_vqa(tmp_path, "train")
    batch = first_batch(VQADataset(source, tokenizer=tokenizer, max_len=12), 4)
    assert batch["image"].shape == (4, 3, SIZE, SIZE)
    assert batch["answer"].tolist() == [2, 0, 1, 0]  # red, yes, 2, yes in ("yes", "2", "red")
    expected = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], np.float32)
    np.testing.assert_allclose(batch["answer_scores"].numpy(), expected)
    assert batch["family"].tolist() == [2, 0, 1, 0]
