"""``cleanroom report``: verify first, then one self-contained HTML page, checked in a real browser.

The page is rendered by headless Chromium and checked from its screenshot (the banner's colour,
bars of the bar colour where the chart is, with lengths in proportion to the released values)
and from the DOM Chromium built (one bar per cohort, escaped labels, intervals in the table),
not only from the HTML text.
"""

from __future__ import annotations

import base64
import dataclasses
import html.parser
import json

import pytest

from cleanroom.cli import main
from cleanroom.offline_check import check_saved_result
from cleanroom.report_html import SIMULATED_COLOUR, VERIFIED_COLOUR, render_report
from cleanroom.report_svg import BAR_COLOUR
from tests.cleanroom.saved_results import write_saved_overlap
from tests.support.headless_browser import chromium_or_skip, dump_dom, screenshot

INJECTED = '<img src=x onerror="alert(1)">&amp;'
# Cohort label -> released matched users. With noise scale 20 the 95% half-width is 60.
ROWS = [["spring_sale", 4000], [INJECTED, 2000], ["loyalty", 1000]]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@pytest.fixture
def saved(tmp_path, policy, policy_bytes, enclave, make_bundle, now):
    return write_saved_overlap(tmp_path, policy, policy_bytes, enclave, make_bundle(enclave, policy_bytes),
                               now, ROWS)


def _report(saved, out, *extra):
    path, policy_file = saved
    return main(["report", str(path), "-o", str(out), "--policy", str(policy_file), *extra])


def test_report_is_written_only_after_verification(saved, tmp_path, now, capsys):
    out = tmp_path / "report.html"
    assert _report(saved, out, "--now", str(now)) == 2  # no verifier policy, no opt-in
    assert not out.exists()
    path, _ = saved
    doc = json.loads(path.read_text())
    signed = bytearray(base64.b64decode(doc["signed"]))
    signed[-1] ^= 1  # the signature's last byte (canonical msgpack: "signature" sorts last)
    doc["signed"] = base64.b64encode(bytes(signed)).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    assert _report((tampered, saved[1]), out, "--insecure-allow-simulation", "--now", str(now)) == 1
    assert "error [bad_signature]" in capsys.readouterr().err and not out.exists()
    assert _report(saved, out, "--insecure-allow-simulation", "--now", str(now)) == 0
    assert "wrote" in capsys.readouterr().out and out.exists()
    assert _report(saved, out, "--insecure-allow-simulation", "--now", str(now)) == 2  # no overwrite
    assert _report(saved, out, "--insecure-allow-simulation", "--now", str(now), "--force") == 0


def test_the_page_is_self_contained_and_escaped(saved, tmp_path, now):
    out = tmp_path / "report.html"
    assert _report(saved, out, "--insecure-allow-simulation", "--now", str(now)) == 0
    text = out.read_text()
    assert "http:" not in text and "https:" not in text and "<script" not in text.lower()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert INJECTED not in text and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;" in text
    assert "4,000 ± 60" in text and "5 of 8" in text and "5.8" in text


class _Dom(html.parser.HTMLParser):
    """Elements (tag, attributes) in document order, and the text inside each id'd element."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag not in ("meta", "br", "line", "img", "input", "link"):
            self._open.append(attributes.get("id"))

    def handle_endtag(self, tag):
        if self._open and tag not in ("meta", "br", "line", "img", "input", "link"):
            self._open.pop()

    def handle_data(self, data):
        for element_id in self._open:
            if element_id:
                self.text_by_id[element_id] = self.text_by_id.get(element_id, "") + data

    def having(self, tag, css_class=None):
        return [a for t, a in self.elements if t == tag and
                (css_class is None or css_class in a.get("class", "").split())]


def test_chromium_renders_the_banner_bars_and_cells(saved, tmp_path, now):
    chromium = chromium_or_skip()
    out = tmp_path / "report.html"
    assert _report(saved, out, "--insecure-allow-simulation", "--now", str(now)) == 0

    dom = _Dom()
    dom.feed(dump_dom(chromium, out))
    assert "SIMULATED" in dom.text_by_id["banner"]
    assert len(dom.having("rect", "bar")) == len(ROWS)
    assert len(dom.having("line", "whisker")) == 3 * len(ROWS)  # a span and two caps per bar
    assert dom.having("img") == [] and dom.having("script") == []  # the label stayed text
    assert INJECTED in dom.text_by_id["chart-1"] and INJECTED in dom.text_by_id["cells"]
    assert all(f"{v:,} ± 60" in dom.text_by_id["cells"] for _, v in ROWS)

    png = screenshot(chromium, out, tmp_path / "shot.png", 1000, 700)
    assert png.pixel(5, 5) == _rgb(SIMULATED_COLOUR)  # the banner spans the top of the page
    banner_bottom = max(y for _, y in png.find(_rgb(SIMULATED_COLOUR), box=(0, 0, 40, 200))) + 1
    bars = png.find(_rgb(BAR_COLOUR), box=(0, banner_bottom, png.width, png.height))
    assert bars, "no pixel of the bar colour below the banner"
    bands: list[list[tuple[int, int]]] = []
    for x, y in sorted(bars, key=lambda p: (p[1], p[0])):
        if bands and y - bands[-1][-1][1] <= 1:
            bands[-1].append((x, y))
        else:
            bands.append([(x, y)])
    assert len(bands) == len(ROWS), "one bar per cohort, top to bottom"
    widths = [max(x for x, _ in band) - min(x for x, _ in band) + 1 for band in bands]
    starts = {min(x for x, _ in band) for band in bands}
    assert len(starts) == 1, "every bar starts at the same zero line"
    for (_, value), width in zip(ROWS, widths, strict=True):
        assert abs(width / widths[0] - value / ROWS[0][1]) < 0.02, widths


def test_a_verified_sgx_result_gets_the_verified_banner(saved, policy_bytes, now, tmp_path):
    chromium = chromium_or_skip()
    from attestation.verifier.verify import VerifierPolicy

    result, enclave = check_saved_result(saved[0], policy_bytes, VerifierPolicy(allow_simulation=True), now)
    as_sgx = dataclasses.replace(enclave, simulated=False)  # only the page's rendering is under test
    out = tmp_path / "sgx.html"
    out.write_text(render_report(result, as_sgx, generated_at=now))
    dom = _Dom()
    dom.feed(dump_dom(chromium, out))
    assert "Verified" in dom.text_by_id["banner"] and "SIMULATED" not in dom.text_by_id["banner"]
    assert enclave.report.mr_enclave in dom.text_by_id["banner"]
    png = screenshot(chromium, out, tmp_path / "sgx.png", 1000, 400)
    assert png.pixel(5, 5) == _rgb(VERIFIED_COLOUR)
    assert png.find(_rgb(SIMULATED_COLOUR)) == []


def test_ci_installs_chromium_before_the_tests():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    install = script.index("command -v chromium")
    assert "apt-get install -y --no-install-recommends chromium" in script[install:]
    assert install < script.index("make test")
