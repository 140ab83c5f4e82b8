"""Memory admission: the frame pixels every session and RenderFrame call may have in flight at once.

A frame holds its share from when it is accepted until its answer is sent; what a step costs grows with its
frames' pixels (a batch's activations, histories, encoded output). Frames wait for their share in arrival order,
so a large frame is not starved by a stream of small ones. Used on the event loop only.
"""

from __future__ import annotations

import asyncio
from collections import deque

from neurender.server.config import ServerConfig, machine_memory_bytes

# What a frame in flight costs per pixel with the demo model's step (docs/results/README.md); the default
# budget is half the machine's memory at this cost.
BYTES_PER_PIXEL = 400


def budget_pixels(config: ServerConfig) -> int:
    """The configured max_pixels_in_flight, or (0) the one sized from this machine's memory."""
    return config.max_pixels_in_flight or max(1, machine_memory_bytes() // 2 // BYTES_PER_PIXEL)


class PixelBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()

    def too_large(self, pixels: int) -> str | None:
        """None if a frame of `pixels` can ever be admitted, else why not."""
        if pixels <= self.limit:
            return None
        return (
            f"a frame of {pixels} pixels is more than this server's whole memory budget of {self.limit} pixels in "
            f"flight (max_pixels_in_flight); send smaller frames"
        )

    async def acquire(self, pixels: int) -> None:
        """Wait until `pixels` fit beside what is in flight (and every earlier waiter got its share)."""
        if not self._waiters and self.in_flight + pixels <= self.limit:
            self.in_flight += pixels
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (pixels, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted just as the waiter was cancelled
                self.release(pixels)
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._grant()
            raise

    def release(self, pixels: int) -> None:
        self.in_flight -= pixels
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.in_flight + self._waiters[0][0] <= self.limit:
            pixels, waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += pixels
                waiter.set_result(None)
