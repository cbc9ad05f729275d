"""Resource monitor: samples per-core CPU load and every process of a run's tree with psutil.

A background thread takes a sample every ``interval`` (0.1 s, 10 Hz, by default):
``{"cores": [percent per core], "procs": [{pid, ppid, name, cpu, rss, threads, status}], "gone": [pids]}``
stamped with ``time.perf_counter_ns()`` so samples share the trace's time axis, and hands batches to a sink
(the run file).  The tree is the root process and all its descendants, re-read each sample; processes that
disappear are reported once in ``gone``.

No Qt here.
"""
import threading
import time

import psutil

DEFAULT_INTERVAL = 0.1
#: Samples are handed to the sink in batches at most this often (the run file commits per batch).
FLUSH_INTERVAL = 0.25


class ResourceMonitor:
    def __init__(self, root_pid, sink, interval=DEFAULT_INTERVAL, exclude=()):
        self.root_pid = root_pid
        self.sink = sink
        self.interval = interval
        self.exclude = set(exclude)
        self._procs = {}            # pid -> psutil.Process (kept so cpu_percent has a previous reading)
        self._stop = threading.Event()
        self._thread = None
        self.samples_taken = 0
        psutil.cpu_percent(percpu=True)     # prime: the next call measures from now

    def start(self):
        self._thread = threading.Thread(target=self._run, name="mpgui-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def tree(self):
        """The root and its descendants now (psutil.Process objects, cached across samples)."""
        try:
            root = self._procs.get(self.root_pid) or psutil.Process(self.root_pid)
            found = [root] + root.children(recursive=True)
        except psutil.Error:
            return []
        out = []
        for p in found:
            if p.pid in self.exclude:
                continue
            cached = self._procs.get(p.pid)
            if cached is None:
                try:
                    p.cpu_percent(None)         # first reading: establishes the baseline
                except psutil.Error:
                    continue
                self._procs[p.pid] = p
                cached = p
            out.append(cached)
        return out

    def sample(self):
        t = time.perf_counter_ns()
        cores = psutil.cpu_percent(percpu=True)
        procs = []
        alive = set()
        for p in self.tree():
            try:
                with p.oneshot():
                    procs.append({"pid": p.pid, "ppid": p.ppid(), "name": p.name(),
                                  "cpu": round(p.cpu_percent(None), 1), "rss": p.memory_info().rss,
                                  "threads": p.num_threads(), "status": p.status()})
                alive.add(p.pid)
            except psutil.Error:
                pass
        gone = [pid for pid in self._procs if pid not in alive]
        for pid in gone:
            del self._procs[pid]
        self.samples_taken += 1
        return t, {"cores": cores, "procs": procs, "gone": gone}

    def _run(self):
        pending = []
        last_flush = time.monotonic()
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                pending.append(self.sample())
            except Exception:           # a sampling hiccup (process vanished mid-read) skips one sample
                pass
            now = time.monotonic()
            if now - last_flush >= FLUSH_INTERVAL:
                self.sink(pending)
                pending = []
                last_flush = now
            next_t += self.interval
            self._stop.wait(max(0.0, next_t - time.monotonic()))
        try:
            pending.append(self.sample())
        except Exception:
            pass
        if pending:
            self.sink(pending)
