"""The worker's own account of how far each partition was processed, which is what it commits."""

from __future__ import annotations

from faust.types import TP

from streams.progress import Admission, Progress

RAW = TP("events.raw", 0)
OTHER = TP("events.raw", 1)


def test_records_are_processed_one_offset_after_the_other_from_the_seek() -> None:
    progress = Progress()
    progress.restart({RAW: 10})
    assert progress.admit(RAW, 10) is Admission.PROCESS
    progress.done(RAW, 10)
    assert progress.admit(RAW, 11) is Admission.PROCESS
    assert progress.committable({RAW: 10}) == {RAW: 11}


def test_a_record_read_again_after_a_seek_is_skipped() -> None:
    progress = Progress()
    progress.restart({RAW: 5})
    assert progress.admit(RAW, 5) is Admission.PROCESS
    assert progress.admit(RAW, 5) is Admission.SKIP


def test_a_batch_admits_several_records_of_a_partition_and_commits_what_is_done() -> None:
    progress = Progress()
    progress.restart({RAW: 0})
    assert [progress.admit(RAW, offset) for offset in range(3)] == [Admission.PROCESS] * 3
    assert progress.committable({RAW: 0}) == {}
    for offset in range(3):
        progress.done(RAW, offset)
    assert progress.committable({RAW: 0}) == {RAW: 3}


def test_a_restart_starts_a_new_generation() -> None:
    progress = Progress()
    before = progress.generation
    progress.restart({RAW: 0})
    assert progress.generation == before + 1


def test_a_record_past_the_next_offset_needs_the_hole_checked() -> None:
    progress = Progress()
    progress.restart({RAW: 0})
    assert progress.admit(RAW, 7) is Admission.CHECK_HOLE
    progress.hole_is_empty(RAW, 7)
    assert progress.admit(RAW, 7) is Admission.SKIP
    assert progress.admit(RAW, 8) is Admission.PROCESS
    progress.done(RAW, 7)
    assert progress.committable({}) == {RAW: 8}


def test_while_rewinding_only_the_expected_offset_is_processed() -> None:
    progress = Progress()
    progress.restart({RAW: 3})
    assert progress.admit(RAW, 9) is Admission.CHECK_HOLE
    progress.rewinding(RAW)
    assert progress.admit(RAW, 10) is Admission.SKIP
    assert progress.admit(RAW, 3) is Admission.PROCESS
    assert progress.admit(RAW, 5) is Admission.CHECK_HOLE


def test_only_partitions_that_moved_are_committed() -> None:
    progress = Progress()
    progress.restart({RAW: 4, OTHER: 0})
    progress.done(OTHER, 0)
    assert progress.committable({RAW: 4, OTHER: 0}) == {OTHER: 1}
    assert progress.committable({RAW: None, OTHER: 1}) == {RAW: 4}


def test_a_restart_forgets_what_was_processed_before_the_seek() -> None:
    progress = Progress()
    progress.restart({RAW: 0})
    progress.admit(RAW, 0)
    progress.done(RAW, 0)
    progress.rewinding(RAW)
    progress.restart({RAW: 0})
    assert progress.admit(RAW, 0) is Admission.PROCESS
    assert progress.committable({RAW: 0}) == {}
