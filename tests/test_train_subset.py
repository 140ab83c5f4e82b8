"""Choosing the training and test parts of a dataset: sequences, held-out sequences, frame ranges."""

from __future__ import annotations

import numpy as np
import pytest

from neurender.tests.train_support import write_moving_shapes
from neurender.training.dataset import ClipDataset, open_dataset
from neurender.training.subset import select


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    return open_dataset(write_moving_shapes(tmp_path_factory.mktemp("d"), sequences=3, frames=6, size=16))


def test_sequences_and_holdout(dataset) -> None:
    assert [s.name for s in select(dataset, exclude=("seq02",)).sequences] == ["seq00", "seq01"]
    assert [s.name for s in select(dataset, sequences=("seq01",)).sequences] == ["seq01"]
    with pytest.raises(ValueError, match=r"no sequence\(s\) \['seq09'\]"):
        select(dataset, exclude=("seq09",))
    with pytest.raises(ValueError, match="leaves no sequence"):
        select(dataset, sequences=("seq01",), exclude=("seq01",))


def test_frame_ranges_count_from_either_end(dataset) -> None:
    first = select(dataset, frames=(0, 4))
    last = select(dataset, frames=(-2, 0))
    seq = dataset.sequences[0]
    assert len(first.sequences[0]) == 4 and len(last.sequences[0]) == 2
    assert np.array_equal(last.sequences[0].frame(0)["image"], seq.frame(4)["image"])
    assert np.array_equal(first.sequences[0].frame(3)["labels"], seq.frame(3)["labels"])
    with pytest.raises(IndexError):
        first.sequences[0].frame(4)
    # the clip loader sees only the range: windows of 3 frames in 4 frames, per sequence
    assert len(ClipDataset(first, 3, None, False, 0)) == 3 * 2
    with pytest.raises(ValueError, match=r"frame range \[7, 6\) outside 0..6"):
        select(dataset, frames=(7, 9))
