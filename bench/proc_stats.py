"""Where the CPU goes, read from Linux's /proc: per process, for the PostgreSQL server as a
whole, for the backends serving one client process, and for the machine.

Figures 8 and 9 run on a machine shared with PostgreSQL, the simulator and (here) other
people's work, so a rate alone says little: these counters say who used the cores.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
POSTGRES_PORT = 5432


def process_cpu(pid: int) -> float:
    """CPU seconds of `pid` (all its threads) and of its children it has reaped; 0 once gone.

    PostgreSQL's postmaster reaps every backend that exits, so a closed connection's work
    stays counted in the server's total."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command (in parentheses, which may contain spaces): utime is the
        # 14th field of the line, stime, cutime and cstime follow.
        fields = text.rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) * TICK_S
    return 0.0


def postgres_server_cpu() -> float:
    """CPU seconds of every process named postgres on this machine (every client's work)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += process_cpu(int(entry.name))
    return total


def client_ports(pid: int, server_port: int = POSTGRES_PORT) -> set[int]:
    """Local TCP ports of `pid`'s connections to `server_port` on this machine: they name
    its backends in pg_stat_activity.client_port."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                parts = line.split()
                local, remote, inode = parts[1], parts[2], parts[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


@dataclass(frozen=True)
class MachineCpu:
    busy_s: float  # all cores together
    total_s: float

    @classmethod
    def read(cls) -> MachineCpu:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        total = sum(fields[:8])  # guest time is already inside user
        return cls(busy_s=(total - idle) * TICK_S, total_s=total * TICK_S)


def load_average() -> float:
    return os.getloadavg()[0]
