"""How many threads torch computes with: the cores that other processes leave free.

On a machine shared with other work, torch's default (one thread per core) is a trap: its threads
wait at barriers for a core another process holds. Measured on 2 cores with one kept busy
(`bench/sample.py`, README "Threads"), two threads sample 1.6x slower than one, and under heavier
load up to 8x. So before each forward pass the `hf` backend looks at how much CPU the other
processes used since it last looked (psutil's counters on the cores this process may run on, less
its own use) and gives torch the cores left over, at least one.

Sampling is the exception: float32 results differ in their last bits between thread counts, and a
seeded sample that meets a near-tie then takes another token (measured: 1 row of 16 x 48 tokens).
So that a seed gives the same samples whatever the load, sampling keeps one count throughout:
torch's default. `CONDPRED_THREADS=auto` lets sampling follow the load too (faster on a shared
machine, seeds then repeat only at equal thread counts); `CONDPRED_THREADS=N` or
`OMP_NUM_THREADS=N` fixes the count for everything.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import torch

#: How often the CPU counters are read again: often enough to follow a change in load, rarely
#: enough that reading them (tens of microseconds) never shows in a forward pass.
INTERVAL_S = 0.5
#: The share of a core another process must have used before torch gives that core up.
BUSY_CORE = 0.5
#: A measurement window longer than this (the model sat idle) says little about the load now:
#: it is restarted instead, and the next forward pass measures afresh.
STALE_S = 5.0
#: torch's own count when condpred was imported: what sampling holds, and the most the load
#: policy gives. Read once, since the policy itself changes torch's count later.
DEFAULT_THREADS = torch.get_num_threads()


def free_threads(most: int, others_busy: float) -> int:
    """Threads for torch when other processes kept `others_busy` cores busy: a core counts as
    theirs from `BUSY_CORE` of it on; at least one thread."""
    return max(1, most - math.floor(others_busy + 1 - BUSY_CORE))


def _setting() -> int | str | None:
    """The user's setting: a fixed count, "auto", or None (sampling steady, the rest adaptive)."""
    for name in ("CONDPRED_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip().lower()
        if value == "auto" and name == "CONDPRED_THREADS":
            return "auto"
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


class ThreadPolicy:
    """Chooses torch's thread count from the cores other processes left free."""

    def __init__(self, active: bool = True) -> None:
        self.active = active  # on a GPU the CPU's thread count is not the policy's business
        self.cores = self._cores()
        self.most = max(1, min(DEFAULT_THREADS, len(self.cores)))
        self.process = psutil.Process()
        self.others_busy = 0.0
        self._held: int | None = None
        self.fix(None)

    @staticmethod
    def _cores() -> list[int]:
        try:
            return sorted(os.sched_getaffinity(0))
        except AttributeError:  # not Linux: every core
            return list(range(psutil.cpu_count() or 1))

    def _counters(self) -> tuple[float, float, float]:
        """(wall clock, CPU seconds all processes spent on our cores, CPU seconds we spent)."""
        per_core = psutil.cpu_times(percpu=True)
        busy = 0.0
        for index in self.cores:
            if index < len(per_core):  # (psutil lists online cores; a gap skews, never fails)
                t = per_core[index]
                waiting = t.idle + getattr(t, "iowait", 0.0)
                guests = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)  # in user too
                busy += sum(t) - waiting - guests
        mine = self.process.cpu_times()
        return time.monotonic(), busy, mine.user + mine.system

    def threads(self) -> int:
        """The count to compute with now (re-measured at most every `INTERVAL_S`)."""
        if self._held is not None:
            return self._held
        if self.fixed or time.monotonic() - self._last[0] < INTERVAL_S:
            return self.chosen
        now = self._counters()
        elapsed = now[0] - self._last[0]
        if elapsed > STALE_S:
            self._last = now
            return self.chosen
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / elapsed
        self.others_busy, self.chosen, self._last = others, free_threads(self.most, others), now
        return self.chosen

    def apply(self) -> int:
        """Give torch the count chosen now; returns it."""
        if not self.active:
            return torch.get_num_threads()
        count = self.threads()
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)
        return count

    @contextmanager
    def sampling(self) -> Iterator[None]:
        """While sampling, one count throughout (torch's default), so that a seed repeats its
        samples whatever the load; a fixed count needs no hold, and `auto` asks for none."""
        if not self.hold_sampling or self._held is not None:
            yield
            return
        self._held = self.most
        try:
            yield
        finally:
            self._held = None

    def fix(self, setting: int | str | None) -> None:
        """From now on `N` threads, "auto" (follow the load, sampling too) or, with None, what the
        environment says."""
        valid = setting is None or setting == "auto"
        valid = valid or (
            isinstance(setting, int) and not isinstance(setting, bool) and setting > 0
        )
        if not valid:
            raise ValueError(f"threads: a count of 1 or more, 'auto' or None, not {setting!r}")
        setting = _setting() if setting is None else setting
        self.fixed = setting if isinstance(setting, int) else None
        self.hold_sampling = setting is None
        self.chosen = self.fixed or self.most
        self._last = self._counters()
