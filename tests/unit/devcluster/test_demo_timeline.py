"""The demo timeline's pure parts: a model from engine options, runs of samples per GPU."""

from __future__ import annotations

from devcluster import demo_timeline
from devcluster.demo_timeline import Sample


def test_model_of_reads_the_model_option() -> None:
    assert demo_timeline.model_of("--model org/m-7b --enable-sleep-mode") == "org/m-7b"
    assert demo_timeline.model_of("--enable-sleep-mode --model=m2") == "m2"
    assert demo_timeline.model_of("tiny --port 8000") == "tiny"


def test_segments_join_close_samples_and_split_on_gaps_and_state() -> None:
    samples = [
        Sample(0.0, "n/gpu0", "a", True),
        Sample(0.5, "n/gpu0", "a", True),
        Sample(1.0, "n/gpu0", "a", True),
        Sample(1.5, "n/gpu0", "a", False),
        Sample(2.0, "n/gpu0", "a", False),
        Sample(9.0, "n/gpu0", "a", True),
        Sample(0.5, "n/gpu1", "b", True),
    ]
    runs = demo_timeline.segments(samples)
    assert runs["n/gpu0"] == [(0.0, 1.0, "a", True), (1.5, 2.0, "a", False), (9.0, 9.5, "a", True)]
    assert runs["n/gpu1"] == [(0.5, 1.0, "b", True)]
