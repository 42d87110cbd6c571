"""A tiny CPU-time sampling profiler (ITIMER_PROF, every 0.5 ms of this process's CPU): the share of samples
in which each function is on the stack (inclusive) or running (self). Far less distortion than cProfile,
which inflates call-heavy code; used by bench/send_cpu.py --sample."""
import collections
import os
import signal

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

class Sampler:
    def __init__(self, interval=0.0005):
        self.interval = interval
        self.incl = collections.Counter()
        self.self_ = collections.Counter()
        self.n = 0
    def _handler(self, signum, frame):
        self.n += 1
        seen = set()
        f = frame
        first = True
        while f is not None:
            code = f.f_code
            key = f"{os.path.relpath(code.co_filename, _ROOT) if code.co_filename.startswith(_ROOT) else code.co_filename.split('site-packages/')[-1]}:{code.co_name}"
            if first:
                self.self_[key] += 1; first = False
            if key not in seen:
                self.incl[key] += 1; seen.add(key)
            f = f.f_back
    def start(self):
        signal.signal(signal.SIGPROF, self._handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
    def stop(self):
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    def report(self, top=60, ms_per_req=None, nreq=None):
        out = []
        for title, c in (("inclusive", self.incl), ("self", self.self_)):
            out.append(f"== {title} ({self.n} samples)")
            for k, v in c.most_common(top):
                out.append(f"{100*v/self.n:6.1f}%  {k}")
        return "\n".join(out)
