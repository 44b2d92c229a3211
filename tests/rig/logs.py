"""Reading a log file that a process is still writing: its size now, what came after an
offset, the JSON lines among it, its tail. Offsets are bytes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from rig.constants import LOG_TAIL_LINES


class LogFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def since(self, offset: int = 0) -> str:
        """Everything written after ``offset``."""
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def json_since(self, offset: int = 0) -> list[dict[str, Any]]:
        """The JSON lines (the provider's log records) written after ``offset``."""
        lines = []
        for line in self.since(offset).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def tail(self, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines written after ``offset``."""
        return "\n".join(self.since(offset).splitlines()[-lines:])
