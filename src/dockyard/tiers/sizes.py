"""Byte counts as people write and read them: `500GiB`, `1.5 TiB`, `10GB`, `1048576`."""

from __future__ import annotations

import re

from dockyard.common.errors import RequestInvalid

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes from `text`: a number with an optional unit (decimal kB..TB, binary
    KiB..TiB, case ignored)."""
    match = _SIZE.match(text)
    unit = match and _UNITS.get(match.group(2).lower())
    if match is None or unit is None:
        raise RequestInvalid(f"invalid size {text!r}: write e.g. 500GiB, 2TiB or 1073741824")
    return int(float(match.group(1)) * unit)


def format_size(size: int) -> str:
    """`size` bytes in the largest binary unit that keeps a number of at least 1."""
    value, unit = float(size), "B"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, name
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
