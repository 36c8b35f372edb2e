"""A one-line progress bar on stderr that log lines do not break.

    with ProgressBar(len(paths), "detect") as bar:
        for path in paths:
            ...
            bar.update(1)

While a bar is open, the handlers of the root logger that write to stderr are wrapped so that
each log record first clears the bar's line, is written on its own line, and the bar is then
drawn again below it. Without a terminal (a file, a pipe, CI logs) the bar is drawn only at
10% steps, each on its own line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

_WIDTH = 30


class _ThroughBar(logging.Handler):
    """Wraps a stream handler: clear the bar, emit the record, redraw the bar."""

    def __init__(self, inner: logging.Handler, bar: ProgressBar) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.clear()
        self.inner.handle(record)
        self.bar.draw()


class ProgressBar:
    """`[=====>     ] 12/40 images  3.1 s` on one stderr line (see the module doc).

    Args:
        total: the number of items.
        label: what is counted, shown before the bar.
        stream: where to draw (default sys.stderr).
        enabled: False draws nothing (e.g. --quiet).
    """

    def __init__(self, total: int, label: str = "", stream: IO[str] | None = None,
                 enabled: bool = True) -> None:
        if total < 0:
            raise ValueError(f"ProgressBar total must be >= 0, got {total}")
        self.total = int(total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self.start = time.time()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_step = -1
        self._wrapped: list[tuple[logging.Handler, _ThroughBar]] = []

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            root = logging.getLogger()
            for handler in list(root.handlers):
                if getattr(handler, "stream", None) in (sys.stderr, self.stream):
                    wrapper = _ThroughBar(handler, self)
                    root.removeHandler(handler)
                    root.addHandler(wrapper)
                    self._wrapped.append((handler, wrapper))
            self.draw()
        return self

    def __exit__(self, *exc: Any) -> None:
        root = logging.getLogger()
        for handler, wrapper in self._wrapped:
            root.removeHandler(wrapper)
            root.addHandler(handler)
        self._wrapped = []
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def text(self) -> str:
        """The bar as text, without line control characters."""
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(_WIDTH * fraction))
        bar = "=" * max(filled - 1, 0) + (">" if 0 < filled < _WIDTH else "=" * min(filled, 1))
        label = f"{self.label} " if self.label else ""
        return (f"{label}[{bar:<{_WIDTH}}] {self.done}/{self.total}  "
                f"{time.time() - self.start:.1f} s")

    def update(self, count: int = 1) -> None:
        """Count `count` more items done and redraw."""
        self.done = min(self.total, self.done + int(count))
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.text())
        else:
            step = 10 * self.done // self.total if self.total else 10
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(self.text() + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Blank the bar's line (terminal only) before something else is written."""
        if self.enabled and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
