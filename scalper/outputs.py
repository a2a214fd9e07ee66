"""Files a command writes on request (--out, --trades-out, --signals-out, --chart):
checked before any work starts, so a typo costs an exit 2 up front, not a long
run followed by a crash."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

from scalper.errors import BadInput

CHART_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg"}


def check_output(path: str | os.PathLike, option: str) -> Path:
    """`path` can be written as a regular file: its folder exists and is writable, and
    it is not a folder, a device or a pipe, nor a read-only file. → the Path."""
    p = Path(path)
    if str(path).strip() == "":
        raise BadInput("an empty file name", where=option, fix="name the file to write")
    folder = p.parent
    if p.exists() or p.is_symlink():
        try:
            st = p.stat()
        except OSError as exc:
            raise BadInput(f"{p} cannot be used ({exc.strerror})", where=option, fix="name another file") from None
        if stat.S_ISDIR(st.st_mode):
            raise BadInput(f"{p} is a folder", where=option, fix=f"name a file inside it, e.g. {p / 'out'}")
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{p} exists and is not a regular file", where=option, fix="name another file")
        if not st.st_mode & 0o222 or not os.access(p, os.W_OK):
            raise BadInput(f"{p} is read-only", where=option, fix="name another file, or make it writable")
    elif not folder.exists():
        raise BadInput(f"folder {folder} does not exist", where=option, fix=f"create it first (mkdir -p {folder})")
    elif not folder.is_dir():
        raise BadInput(f"{folder} is not a folder", where=option, fix="name a file inside an existing folder")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"folder {folder} is not writable", where=option, fix="name a file in a folder you can write")
    return p


def check_chart(path: str | os.PathLike, option: str = "--chart") -> str:
    """A chart path: writable, with an extension matplotlib writes. → the format name."""
    p = check_output(path, option)
    fmt = CHART_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise BadInput(f"cannot draw a chart as {p.suffix or 'a file without extension'!s}", where=option,
                       fix="end the name with " + ", ".join(sorted(CHART_FORMATS)))
    return fmt


def write_csv(path: str | os.PathLike, fields: list[str], rows: list[dict]) -> None:
    """`rows` as a CSV file with a header (the signal and trade files)."""
    with Path(path).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
