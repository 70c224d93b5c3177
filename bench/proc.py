"""Processes the benchmark starts, and what it reads from them while they run.

Every worker is a real `sealtrail stream` / `sealtrail sink` process (or a
reference script), configured through SEALTRAIL_* variables as an operator
would configure it. While a phase runs, a Sampler polls each process every
`interval` seconds for its resident memory and CPU time (psutil) and scrapes its
Prometheus endpoint, so a phase can watch counters move without touching the
worker's code. Only processes started here are ever stopped, by their pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Worker:
    """A process the benchmark started, with its log and its resource samples."""

    name: str
    popen: subprocess.Popen
    log: Path
    metrics_url: str | None = None
    service: bool = False  # a worker that runs until stopped (a script that exits 0 when done is not)
    _scraped: dict[str, float] = field(default_factory=dict)
    _scraped_at: float = 0.0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def sample(self, now: float) -> None:
        """Record RSS and cumulative CPU seconds (user + system) of the process."""
        try:
            p = psutil.Process(self.pid)
            with p.oneshot():
                rss = p.memory_info().rss
                cpu = p.cpu_times()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return
        self.rss_samples.append((now, rss))
        self.cpu_samples.append((now, cpu.user + cpu.system))

    def peak_rss(self) -> int:
        """The kernel's high-water mark (VmHWM) when readable, else the largest psutil sample."""
        sampled = max((r for _, r in self.rss_samples), default=0)
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(sampled, int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        return sampled

    def cpu_seconds(self, since: float | None = None, until: float | None = None) -> float:
        """CPU seconds the process used between two sample times (whole life when not given)."""
        window = [(t, c) for t, c in self.cpu_samples if (since is None or t >= since) and (until is None or t <= until)]
        if len(window) < 2:
            return 0.0
        return window[-1][1] - window[0][1]

    def discover_metrics(self, timeout_s: float = 60.0) -> str:
        """Find the worker's Prometheus endpoint among the ports it listens on (port 0 = any free one)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} before serving metrics; see {self.log}")
            try:
                conns = psutil.Process(self.pid).net_connections(kind="tcp")
            except psutil.Error:
                conns = []
            for c in conns:
                if c.status != psutil.CONN_LISTEN:
                    continue
                url = f"http://127.0.0.1:{c.laddr.port}/metrics"
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:
                        if b"sealtrail_" in resp.read():
                            self.metrics_url = url
                            return url
                except OSError:
                    continue
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} served no metrics within {timeout_s:.0f}s; see {self.log}")

    def scrape(self, max_age_s: float = 0.2) -> dict[str, float]:
        """Metric samples summed over labels: {'sealtrail_events_sealed_total': 123.0, ...}; {} if unreachable.

        At most one request per ``max_age_s``: serving /metrics costs the worker
        CPU, and a benchmark should not load what it measures.
        """
        if self.metrics_url is None:
            return {}
        if time.monotonic() - self._scraped_at < max_age_s:
            return self._scraped
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
                out.setdefault(f"{s.name}#labels", 0.0)
                out[f"{s.name}#labels"] += 1
        self._scraped, self._scraped_at = out, time.monotonic()
        return out

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after the timeout; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path, service: bool = False) -> Worker:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            argv, env={**os.environ, **env, "COLUMNS": "200"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name, popen, log, service=service)


def sealtrail_command(command: str, *args: str) -> list[str]:
    """The product's own CLI, run by the interpreter of this environment."""
    return [sys.executable, "-m", "sealtrail.cli", command, *args]


def script(path: Path, *args: str) -> list[str]:
    return [sys.executable, str(path), *args]


class Sampler:
    """Polls a set of workers: resources on every tick, metrics when asked."""

    def __init__(self, workers: list[Worker], interval: float = 0.1) -> None:
        self.workers = workers
        self.interval = interval

    def tick(self) -> float:
        now = time.time()
        for w in self.workers:
            w.sample(now)
        return now

    def check_alive(self) -> None:
        """A service must keep running; a script may finish, but only successfully."""
        for w in self.workers:
            code = w.popen.poll()
            if code is not None and (w.service or code != 0):
                raise RuntimeError(f"{w.name} exited with {code}:\n{w.log_tail()}")
