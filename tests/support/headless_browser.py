"""Render a local HTML file in headless Chromium (Debian's ``chromium``): a screenshot and the DOM.

Each run gets a new empty profile directory and every background service Chromium would reach
the network with is switched off. ``Png`` decodes the screenshot with zlib alone (8-bit RGB or
RGBA, the five PNG filters), so the test needs no imaging library.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


def chromium_or_skip() -> str:
    """The chromium binary; skip without it, except under CI=true, where its absence fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required when CI=true)")
        pytest.skip(reason)
    return found


def _run(binary: str, page: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra,
                               page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120, check=True)


def screenshot(binary: str, page: Path, out: Path, width: int, height: int) -> Png:
    _run(binary, page, [f"--screenshot={out}", f"--window-size={width},{height}"])
    return Png.read(out)


def dump_dom(binary: str, page: Path) -> str:
    return _run(binary, page, ["--dump-dom"]).stdout


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    rows: list[bytes]  # RGB, 3 bytes per pixel

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        r, g, b = self.rows[y][3 * x:3 * x + 3]
        return r, g, b

    def find(self, colour: tuple[int, int, int], tolerance: int = 2,
             box: tuple[int, int, int, int] | None = None) -> list[tuple[int, int]]:
        """Every (x, y) of ``colour`` (within ``tolerance`` per channel), inside ``box`` if given."""
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        hits = []
        for y in range(y0, min(y1, self.height)):
            row = self.rows[y]
            for x in range(x0, min(x1, self.width)):
                if all(abs(row[3 * x + i] - colour[i]) <= tolerance for i in range(3)):
                    hits.append((x, y))
        return hits

    @classmethod
    def read(cls, path: Path) -> Png:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat, header = 8, b"", None
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            chunk = data[pos + 8:pos + 8 + length]
            pos += 12 + length
            if kind == b"IHDR":
                header = struct.unpack(">IIBBBBB", chunk)
            elif kind == b"IDAT":
                idat += chunk
        assert header is not None
        width, height, depth, colour_type, _, _, interlace = header
        assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unsupported PNG layout"
        channels = 3 if colour_type == 2 else 4
        raw = zlib.decompress(idat)
        stride = width * channels
        rows, previous = [], bytearray(stride)
        for y in range(height):
            start = y * (stride + 1)
            kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
            _unfilter(kind, line, previous, channels)
            rgb = line if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
            rows.append(bytes(rgb))
            previous = line
        return cls(width, height, rows)


def _unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = above[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            corner = above[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + predictor) & 0xFF
