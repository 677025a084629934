"""CPU time and memory of the stack's processes, each counted with all its descendants."""

import asyncio
import contextlib
import time

import psutil  # type: ignore[import-untyped, unused-ignore]

_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except _GONE:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree.

    ``children_*`` hold the CPU of children that already exited and were reaped (PostgreSQL
    backends of closed connections, for instance), so short-lived children are not lost.
    """
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(*_GONE):
            times = process.cpu_times()
            total += float(times.user + times.system + times.children_user + times.children_system)
    return total


def tree_memory_bytes(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process tree. RSS counts shared pages (PostgreSQL's shared buffers)
    once per process; PSS splits them between the processes that share them."""
    rss = pss = 0
    for process in _tree(pid):
        with contextlib.suppress(*_GONE):
            info = process.memory_full_info()
            rss += int(info.rss)
            pss += int(getattr(info, "pss", info.rss))
    return rss, pss


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle (all processes, ours and others')."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


class ProcessSet:
    """Named process trees of the stack, measured over one window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.cpu_before: dict[str, float] = {}
        self.cpu_after: dict[str, float] = {}
        self.cpu_after_at = 0.0
        self.idle_cpu_per_s: dict[str, float] = {}
        self.peak_rss: dict[str, int] = dict.fromkeys(self.pids, 0)
        self.peak_pss: dict[str, int] = dict.fromkeys(self.pids, 0)
        self.peak_pss_total = 0

    def snapshot_cpu(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def start_window(self) -> None:
        self.cpu_before = self.snapshot_cpu()

    def end_window(self) -> None:
        self.cpu_after_at = time.time()
        self.cpu_after = self.snapshot_cpu()

    def cpu_used(self) -> dict[str, float]:
        return {
            name: round(self.cpu_after.get(name, 0.0) - self.cpu_before.get(name, 0.0), 3)
            for name in self.pids
        }

    def timeline_point(self, began: float) -> dict[str, float]:
        """Cumulative CPU of each part (and the machine) at this moment, for the timeline."""
        point = {name: round(value, 3) for name, value in self.snapshot_cpu().items()}
        point["machine"] = round(machine_busy_seconds(), 3)
        point["t"] = round(time.time() - began, 2)
        return point

    async def measure_idle(self, seconds: float) -> None:
        """CPU per second of each part before any load: the stack's fixed cost."""
        if seconds <= 0:
            return
        before = self.snapshot_cpu()
        await asyncio.sleep(seconds)
        after = self.snapshot_cpu()
        self.idle_cpu_per_s = {
            name: round((after[name] - before[name]) / seconds, 4) for name in self.pids
        }

    def sample_memory(self) -> None:
        current = {name: tree_memory_bytes(pid) for name, pid in self.pids.items()}
        for name, (rss, pss) in current.items():
            self.peak_rss[name] = max(self.peak_rss[name], rss)
            self.peak_pss[name] = max(self.peak_pss[name], pss)
        self.peak_pss_total = max(self.peak_pss_total, sum(pss for _, pss in current.values()))

    async def sample_memory_forever(self, period: float = 1.0) -> None:
        while True:
            await asyncio.to_thread(self.sample_memory)
            await asyncio.sleep(period)
