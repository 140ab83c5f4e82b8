"""Which clips each process reads at each iteration: a pure function of (seed, epoch, iteration, rank).

An epoch's index stream is a seeded permutation of every clip window (more permutations follow if an epoch
needs more). Iteration i takes the next world_size * accumulate * batch_size indices; micro-batch m of rank r
is one slice of them. So two processes with batch 1 read exactly the clips one process with batch 2 reads,
and a resumed run continues with the very clip it would have read next.
"""

from __future__ import annotations

import numpy as np


def epoch_stream(seed: int, epoch: int, n_items: int, length: int) -> np.ndarray:
    """At least `length` indices into `n_items` items: seeded permutations back to back."""
    if n_items < 1:
        raise ValueError("the clip dataset is empty")
    parts = []
    k = 0
    while sum(len(p) for p in parts) < length:
        parts.append(np.random.default_rng([seed, epoch, k]).permutation(n_items))
        k += 1
    return np.concatenate(parts)[:length]


def micro_batch_indices(
    seed: int, epoch: int, iteration: int, n_items: int, batch_size: int, accumulate: int, rank: int, world_size: int
) -> list[list[int]]:
    """The clip indices of each of this rank's micro-batches at (epoch, iteration)."""
    per_iteration = batch_size * accumulate * world_size
    stream = epoch_stream(seed, epoch, n_items, (iteration + 1) * per_iteration)
    chunk = stream[iteration * per_iteration :]
    out = []
    for m in range(accumulate):
        start = (m * world_size + rank) * batch_size
        out.append([int(i) for i in chunk[start : start + batch_size]])
    return out
