"""A live progress line for long EM fits (used by the command line).

The EM driver calls ``estimator._progress(n_iter, lower_bound, change)`` once
per iteration when that attribute is set (see ``BaseEM._run_em``).  On a
terminal :class:`ProgressLine` redraws one line in place; elsewhere (a log
file, a pipe) it writes a line at most every ``min_interval`` seconds, and
the command line only creates it there when asked (``--verbose``).
"""
import math
import sys
import time


class ProgressLine:
    """Report EM iterations on one line: run, iteration, lower bound, change, speed, time.

    Parameters
    ----------
    stream : file-like, default=None
        Where to write; None means ``sys.stderr``.
    live : bool, default=None
        Redraw the line in place (``\\r``) rather than writing one line per
        report; None means "when ``stream`` is a terminal".
    n_init : int, default=1
        Initialisations of the fit, shown as ``run i/n_init`` when above 1.
    min_interval : float, default=None
        Seconds between two reports (the first iteration of every run is
        always shown, and :meth:`close` shows the last one); None means 0.1 s
        for a live line and 1 s otherwise.
    clock : callable, default=time.perf_counter
        Returns the time in seconds (replaceable for tests).
    """

    def __init__(self, stream=None, *, live=None, n_init=1, min_interval=None,
                 clock=time.perf_counter):
        self.stream = sys.stderr if stream is None else stream
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self.n_init = n_init
        self.min_interval = (0.1 if live else 1.0) if min_interval is None else min_interval
        self.clock = clock
        self._start = self._run_start = self._last_call = clock()
        self._last_write = -math.inf
        self._run = 0
        self._pending = None      # the latest report not yet written
        self._width = 0           # characters of the line on screen (live mode)

    def format(self, n_iter, lower_bound, change, now):
        """The text of one report.

        Parameters
        ----------
        n_iter : int
        lower_bound : float
        change : float
            Change of the lower bound since the previous iteration (inf on
            the first).
        now : float
            The clock's time of the report.

        Returns
        -------
        line : str
        """
        run_seconds = max(now - self._run_start, 1e-9)
        change_text = f"{change:+.3e}" if math.isfinite(change) else "n/a"
        run = f"run {self._run}/{self.n_init}  " if self.n_init > 1 else ""
        return (f"EM {run}iteration {n_iter}  lower bound {lower_bound:.6f}  "
                f"change {change_text}  {n_iter / run_seconds:.1f} it/s  "
                f"{now - self._start:.1f} s")

    def __call__(self, n_iter, lower_bound, change):
        """Record one iteration; write it if the interval has passed."""
        now = self.clock()
        if n_iter == 1:   # a new run (restart): its speed counts from the previous report
            self._run += 1
            self._run_start = self._last_call
        self._last_call = now
        self._pending = self.format(n_iter, lower_bound, change, now)
        if n_iter == 1 or now - self._last_write >= self.min_interval:
            self._write(self._pending)
            self._last_write = now

    def _write(self, line):
        if self.live:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self._pending = None
        self.stream.flush()

    def close(self):
        """Finish: erase a live line; in log mode write the last report if unwritten."""
        if self.live:
            if self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            self._width = 0
        elif self._pending is not None:
            self._write(self._pending)
        self._pending = None
