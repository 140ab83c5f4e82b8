"""The micro-batcher: stacks ready frames of different sessions into one generator step, off the event loop.

Each session has a FIFO of waiting frames. A session is *ready* when it has a waiting frame and none in
flight. A free worker thread takes the group of ready sessions (same model and frame size) whose oldest frame
has waited longest. If other open sessions of that group are idle (they could send a frame any moment) and
the group is smaller than max_batch, it waits up to max_wait for them; then it runs one step on at most
max_batch frames, one per session. A lone session never waits. Each row of the batch is one session's frame
and that session's own history, and each row of the result goes back to its session only; a session is never
in two batches at once, so its frames run in order and its history is never read while being written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from neurender.server.metrics import Metrics
from neurender.server.session import Session
from neurender.server.step_runner import Row, keep_state, stack_feeds

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    """One frame of one session. `on_done` is called once, from a worker thread, with the outcome."""

    session: Session
    frame_id: int
    inputs: dict[str, np.ndarray]
    reset: bool
    on_done: Callable[[Outcome], None]
    received: float = field(default_factory=time.perf_counter)


@dataclass
class Outcome:
    job: Job
    rgb: np.ndarray | None  # uint8 [H, W, 3]; None if the step failed
    error: str | None
    started: float  # perf_counter when the batch started
    inference_s: float
    batch_size: int


class Batcher:
    def __init__(self, max_batch: int, max_wait_s: float, workers: int, metrics: Metrics) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self._cond = threading.Condition()
        self._waiting: dict[Session, deque[Job]] = {}
        self._busy: set[Session] = set()
        self._open: dict[tuple, int] = {}  # open sessions per batch key
        self._queued = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"neurender-infer-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the worker threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def register(self, session: Session) -> None:
        """A session that may send frames; the batcher waits for idle ones to fill a batch."""
        with self._cond:
            key = session.spec.batch_key
            self._open[key] = self._open.get(key, 0) + 1

    def unregister(self, session: Session) -> list[Job]:
        """The session is closed: forget its waiting frames and free its history (after its frame in flight,
        if any, finishes; that frame's result is still delivered)."""
        with self._cond:
            if session not in self._busy:
                session.history.free()
            key = session.spec.batch_key
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]
            jobs = list(self._waiting.pop(session, ()))
            self._queued -= len(jobs)
            self.metrics.queue_depth.set(self._queued + len(self._busy))
            self._cond.notify_all()
            return jobs

    def submit(self, job: Job, replace_only: bool = False) -> tuple[bool, Job | None]:
        """Queue a frame. For a DROP_STALE session the frame replaces the session's waiting frame (whose reset
        flag it inherits, so a camera cut is never lost). With replace_only the frame is accepted only if it
        replaces one. Returns (accepted, replaced job)."""
        with self._cond:
            queue = self._waiting.setdefault(job.session, deque())
            replaced = None
            if job.session.spec.drop_stale and queue:
                replaced = queue.pop()
                job.reset = job.reset or replaced.reset
                self._queued -= 1
            elif replace_only:
                if not queue:
                    del self._waiting[job.session]
                return False, None
            queue.append(job)
            self._queued += 1
            self.metrics.queue_depth.set(self._queued + len(self._busy))
            self._cond.notify()
            return True, replaced

    def pending(self) -> int:
        """Frames waiting or in flight."""
        with self._cond:
            return self._queued + len(self._busy)

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    picked = self._pick(time.perf_counter())
                    if isinstance(picked, list):
                        break
                    if self._stopping and not self._queued:
                        return
                    self._cond.wait(picked)
            self._run(picked)
            with self._cond:
                for job in picked:
                    self._busy.discard(job.session)
                    if job.session.closed:  # unregistered while in flight
                        job.session.history.free()
                self.metrics.queue_depth.set(self._queued + len(self._busy))
                self._cond.notify_all()

    def _pick(self, now: float) -> list[Job] | float | None:
        """A batch to run now, or how long to wait before looking again (None: until notified)."""
        groups: dict[tuple, list[Session]] = {}
        for session, queue in self._waiting.items():
            if queue and session not in self._busy:
                groups.setdefault(session.spec.batch_key, []).append(session)
        if not groups:
            return None
        oldest = min(groups.values(), key=lambda g: min(self._waiting[s][0].received for s in g))
        oldest.sort(key=lambda s: self._waiting[s][0].received)
        waited = now - self._waiting[oldest[0]][0].received
        key = oldest[0].spec.batch_key
        idle = self._open.get(key, 0) - len(oldest) - sum(1 for s in self._busy if s.spec.batch_key == key)
        if idle > 0 and len(oldest) < self.max_batch and waited < self.max_wait_s and not self._stopping:
            return self.max_wait_s - waited
        jobs = []
        for session in oldest[: self.max_batch]:
            queue = self._waiting[session]
            jobs.append(queue.popleft())
            if not queue:
                del self._waiting[session]
            self._busy.add(session)
        self._queued -= len(jobs)
        return jobs

    def _run(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        model = jobs[0].session.spec.model
        try:
            feeds = stack_feeds(
                model.backend.input_names,
                [Row(job.inputs, job.session.history, job.reset, job.session.spec.style) for job in jobs],
            )
            rgb, next_labels, next_frames = model.backend.run(feeds)
            error = None
        except Exception as err:  # a backend failure fails this batch's frames, never the server
            log.exception(
                "inference failed for %d frame(s) of model %s",
                len(jobs),
                model.name,
                extra={"fields": {"event": "inference_failed", "model": model.name}},
            )
            error = f"inference failed: {type(err).__name__}: {err}"
        elapsed = time.perf_counter() - started
        self.metrics.batch_size.labels(model.name).observe(len(jobs))
        self.metrics.latency.labels(model.name, "inference").observe(elapsed)
        for i, job in enumerate(jobs):
            session, frame = job.session, None
            if error is None:
                frame = rgb[i].copy()
                if not session.closed:
                    keep_state(session.history, next_labels[i], next_frames[i])
            try:
                job.on_done(Outcome(job, frame, error, started, elapsed, len(jobs)))
            except Exception:
                log.exception("delivering frame %d of session %s failed", job.frame_id, session.id)
