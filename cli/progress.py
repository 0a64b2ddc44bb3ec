"""A progress bar on stderr for long operator commands (plain lines when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self._last_percent = -1
        self._tty = stream.isatty()

    def update(self, done: int, total: int, label: str | None = None) -> None:
        if label is not None and label != self.label:
            self.finish()
            self.label, self.started, self._last_percent = label, time.monotonic(), -1
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if self._tty:
            filled = self.width * percent // 100
            bar = "#" * filled + "-" * (self.width - filled)
            rate = done / max(time.monotonic() - self.started, 1e-6)
            self.stream.write(
                f"\r{self.label:<10} [{bar}] {percent:3d}% {done}/{total} {rate:,.0f}/s"
            )
            self.stream.flush()
        elif percent // 10 != self._last_percent // 10:
            self.stream.write(f"{self.label}: {percent}% ({done}/{total})\n")
        self._last_percent = percent

    def finish(self) -> None:
        if self._tty and self._last_percent >= 0:
            self.stream.write("\n")
            self.stream.flush()
