"""Greedy phone decoding: argmax, join runs, drop <SIL>, timestamps."""

import numpy as np
import pytest

from wav2vec_u.decode.viterbi import join_runs, spans_from_lengths, viterbi_decode

PHONES = ["<SIL>", "a", "b", "c"]


def one_hot_logits(ids, v=4, scale=5.0):
    x = np.zeros((len(ids), v))
    x[np.arange(len(ids)), ids] = scale
    return x


def test_join_runs():
    assert join_runs([1, 1, 2, 2, 2, 1]) == [(1, 0, 2), (2, 2, 5), (1, 5, 6)]
    assert join_runs([]) == []


def test_argmax_join_drop_silence():
    ids = [0, 1, 1, 0, 2, 2, 1, 3, 0]
    out = viterbi_decode(one_hot_logits(ids), PHONES)
    assert out.tokens == ["a", "b", "a", "c"]
    assert [(s.start, s.end) for s in out.segments] == [(1, 3), (4, 6), (6, 7), (7, 8)]
    assert out.unit == "position"


def test_repeat_split_by_silence_stays_two_phones():
    out = viterbi_decode(one_hot_logits([1, 0, 1]), PHONES)
    assert out.tokens == ["a", "a"]


def test_timestamps_in_seconds_from_spans():
    # segments pooled 3, 2, 5, 2 frames at 50 Hz
    spans = spans_from_lengths([3, 2, 5, 2])
    assert spans.tolist() == [[0, 3], [3, 5], [5, 10], [10, 12]]
    out = viterbi_decode(one_hot_logits([1, 1, 0, 2]), PHONES, spans=spans, frame_rate=50.0)
    assert out.unit == "seconds"
    assert out.segments[0].token == "a" and out.segments[0].start == 0.0 and out.segments[0].end == pytest.approx(0.10)
    assert out.segments[1].token == "b" and out.segments[1].start == pytest.approx(0.20)
    assert out.segments[1].end == pytest.approx(0.24)


def test_extra_output_position_is_clamped_to_last_span():
    spans = spans_from_lengths([2, 2])
    out = viterbi_decode(one_hot_logits([1, 2, 2]), PHONES, spans=spans)
    assert out.unit == "frames"
    assert out.segments[-1].end == 4


def test_empty_and_bad_shapes():
    assert viterbi_decode(np.zeros((0, 4)), PHONES).tokens == []
    with pytest.raises(ValueError, match="V=4"):
        viterbi_decode(np.zeros((3, 5)), PHONES)


def test_segment_spans_from_clusters_with_mean_pooling(tmp_path):
    from wav2vec_u.decode.decode import segment_spans

    # runs of equal cluster ids: [0,0 | 5 | 2,2,2 | 7 | 1,1] = 5 segments; pooled in pairs -> 3
    (tmp_path / "valid.cluster").write_text("0 0 5 2 2 2 7 1 1\n")
    assert segment_spans(tmp_path, "valid", [5])[0].tolist() == [[0, 2], [2, 3], [3, 6], [6, 7], [7, 9]]
    assert segment_spans(tmp_path, "valid", [3])[0].tolist() == [[0, 3], [3, 7], [7, 9]]
    assert segment_spans(tmp_path, "valid", [4, 1]) is None  # utterance count mismatch
    assert segment_spans(tmp_path, "train", [3]) is None     # no cluster file
