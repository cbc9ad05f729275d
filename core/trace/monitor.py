"""Resource monitor: samples per-core CPU load and every process of a run's tree with psutil.

A background thread takes a sample every ``interval`` (0.1 s, 10 Hz, by default):
``{"cores": [percent per core], "procs": [{pid, ppid, name, cpu, rss, threads, status[, uss]}], "gone": [pids]}``
stamped with ``time.perf_counter_ns()`` so samples share the trace's time axis, and hands batches to a sink
(the run file).  The tree is the root process and all its descendants, re-read each sample; processes that
disappear are reported once in ``gone``.

``uss`` (bytes only this process holds: what would be freed if it ended) is in a process's entry when it is
first seen and then once per ``USS_INTERVAL``: RSS counts the pages a fork child still shares with its
parent, USS does not, so the two side by side show what copy-on-write saves.  It is sampled sparingly
because psutil reads the process's whole memory map for it.

No Qt here.
"""
import threading
import time

import psutil

DEFAULT_INTERVAL = 0.1
#: Samples are handed to the sink in batches at most this often (the run file commits per batch).
FLUSH_INTERVAL = 0.25
#: A process's USS is read at most this often (seconds): ``memory_full_info`` reads its memory map, about 40
#: times the cost of the RSS (0.4 ms against 0.01 ms for a small process here), where RSS is read every sample.
USS_INTERVAL = 0.5


class ResourceMonitor:
    def __init__(self, root_pid, sink, interval=DEFAULT_INTERVAL, exclude=(), clock=time.monotonic):
        self.root_pid = root_pid
        self.sink = sink
        self.interval = interval
        self.exclude = set(exclude)
        self._procs = {}            # pid -> psutil.Process (kept so cpu_percent has a previous reading)
        self._uss_at = {}           # pid -> when its USS was last read (``clock``)
        self._clock = clock
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
            root = self._procs.get(self.root_pid)
            if root is not None and not root.is_running():
                # its children were handed to another parent: none is found through it, and looking reads
                # every process of the machine (up to 25 ms here, in the last sample a run's end waits for)
                return []
            root = root or psutil.Process(self.root_pid)
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
        now = self._clock()
        cores = psutil.cpu_percent(percpu=True)
        procs = []
        alive = set()
        for p in self.tree():
            try:
                with p.oneshot():
                    entry = {"pid": p.pid, "ppid": p.ppid(), "name": p.name(),
                             "cpu": round(p.cpu_percent(None), 1), "rss": p.memory_info().rss,
                             "threads": p.num_threads(), "status": p.status()}
                procs.append(entry)
                alive.add(p.pid)
            except psutil.Error:
                continue
            if now - self._uss_at.get(p.pid, now - USS_INTERVAL) >= USS_INTERVAL:
                self._uss_at[p.pid] = now
                try:
                    entry["uss"] = p.memory_full_info().uss
                except (psutil.Error, AttributeError):     # not allowed, or gone; no USS on this platform
                    pass
        gone = [pid for pid in self._procs if pid not in alive]
        for pid in gone:
            del self._procs[pid]
            self._uss_at.pop(pid, None)
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
