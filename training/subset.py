"""Parts of a dataset: some sequences, and a frame range of each (train on the first frames, test on the rest)."""

from __future__ import annotations

import numpy as np

from neurender.training.dataset import Sequence, VideoDataset


class FrameRange:
    """Frames [first, end) of a sequence, indexed from 0; behaves like the Sequence it wraps."""

    def __init__(self, sequence: Sequence, first: int, end: int) -> None:
        if not 0 <= first < end <= len(sequence):
            raise ValueError(f"{sequence.name}: frame range [{first}, {end}) outside 0..{len(sequence)}")
        self.sequence = sequence
        self.name = sequence.name
        self.first = first
        self.length = end - first

    @property
    def folders(self) -> list[str]:
        return self.sequence.folders

    def __len__(self) -> int:
        return self.length

    def frame(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(f"{self.name}: frame {index} out of range 0..{self.length - 1}")
        return self.sequence.frame(self.first + index)


def select(
    dataset: VideoDataset,
    sequences: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    frames: tuple[int, int] | None = None,
) -> VideoDataset:
    """The named sequences (all if none are named) minus `exclude`, each cut to `frames` = (first, end).

    A negative bound counts from the end of each sequence, so (-20, 0) (end 0 meaning "the end") is the last
    20 frames of every sequence.
    """
    known = {s.name for s in dataset.sequences}
    unknown = sorted((set(sequences) | set(exclude)) - known)
    if unknown:
        raise ValueError(f"{dataset.root}: no sequence(s) {unknown}; it has {sorted(known)}")
    chosen = [s for s in dataset.sequences if (not sequences or s.name in sequences) and s.name not in exclude]
    if not chosen:
        raise ValueError(f"{dataset.root}: the selection leaves no sequence")
    if frames is not None:
        cut = []
        for s in chosen:
            n = len(s)
            first = frames[0] + n if frames[0] < 0 else frames[0]
            end = frames[1] + n if frames[1] <= 0 else min(frames[1], n)
            cut.append(FrameRange(s, first, end))
        chosen = cut
    return VideoDataset(dataset.root, dataset.meta, chosen)
