"""CPU time and memory of the stack's processes, each counted with all its descendants."""

import asyncio
import contextlib

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


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process tree (shared pages count once per process)."""
    total = 0
    for process in _tree(pid):
        with contextlib.suppress(*_GONE):
            total += int(process.memory_info().rss)
    return total


class ProcessSet:
    """Named process trees of the stack, measured over one window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.cpu_before: dict[str, float] = {}
        self.cpu_after: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {name: 0 for name in self.pids}
        self.peak_rss_total = 0

    def snapshot_cpu(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def start_window(self) -> None:
        self.cpu_before = self.snapshot_cpu()

    def end_window(self) -> None:
        self.cpu_after = self.snapshot_cpu()

    def cpu_used(self) -> dict[str, float]:
        return {
            name: round(self.cpu_after.get(name, 0.0) - self.cpu_before.get(name, 0.0), 3)
            for name in self.pids
        }

    def sample_rss(self) -> None:
        current = {name: tree_rss_bytes(pid) for name, pid in self.pids.items()}
        for name, value in current.items():
            self.peak_rss[name] = max(self.peak_rss[name], value)
        self.peak_rss_total = max(self.peak_rss_total, sum(current.values()))

    async def sample_rss_forever(self, period: float = 1.0) -> None:
        while True:
            await asyncio.to_thread(self.sample_rss)
            await asyncio.sleep(period)
