"""What every task shares: the evaluation limit and the majority rule of the baselines."""

from __future__ import annotations

from ash_neuro.data.records import EntailmentRecord, NLVRRecord, VQARecord
from ash_neuro.tasks.base import majority, record_images, within_limit


def test_within_limit_keeps_examples_whose_images_all_fit():
    records = [
        EntailmentRecord(0, "a", 0),
        EntailmentRecord(3, "b", 1),
        NLVRRecord(1, 2, "c", 1),
        NLVRRecord(1, 5, "d", 0),
    ]
    assert within_limit(records, 3) == [0, 2]
    assert within_limit(records, 0) == [0, 1, 2, 3]
    assert within_limit(records, 6) == [0, 1, 2, 3]
    assert within_limit(records, 1) == [0]


def test_an_example_reads_one_image_or_both_of_a_pair():
    assert record_images(VQARecord(4, "q", 0, -1, {0: 1.0})) == (4,)
    assert record_images(NLVRRecord(7, 2, "s", 0)) == (7, 2)


def test_majority_is_the_largest_count_and_the_smallest_value_on_a_tie():
    assert majority({3: 2.0, 1: 5.0, 0: 4.5}) == 1
    assert majority({9: 3.0, 2: 3.0, 5: 1.0}) == 2
    assert majority({4: 0.3, 7: 0.3 + 1e-9}) == 7
