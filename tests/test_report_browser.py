"""The validation report as a reader sees it: opened in headless Chromium, offline.

`check_report_in_browser(html, png)` is the whole check, so any report (this small one, or a full validation
pack) can be pointed at it: the page loads with no error, fetches nothing, every figure is drawn, and the first
screen is a real picture. The driver is tested on pages built to fail, so a pass means something.

Chromium is Debian's `chromium` package (`.ci/run` installs it). Under CI=true a missing browser fails the
run; elsewhere these tests skip and say why.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import BrowserError, PageCheck, find_chromium, open_in_chromium

from validation.report import Report, calibration_figure, roc_figure

if find_chromium() is None:
    if os.environ.get("CI") == "true":
        raise BrowserError("CI=true but no chromium on PATH: .ci/run installs Debian's `chromium` package")
    pytest.skip("no chromium on PATH (`apt-get install chromium` to run the browser checks)", allow_module_level=True)

# a 1x1 opaque PNG, and the same cut short after its header, and bytes that are no PNG at all
GOOD_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
TRUNCATED_PNG = GOOD_PNG[:60]
NOT_A_PNG = "AAAAbm90IGEgcG5nIGF0IGFsbA=="
MIN_SCREENSHOT_BYTES = 10_000


def _png_size(png: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _distinct_colours(png: Path) -> int:
    from PIL import Image  # matplotlib depends on Pillow, so it is installed wherever the report can be built

    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20


def check_report_in_browser(html: Path, png: Path, width: int = 1280, height: int = 900) -> PageCheck:
    """Open a written report in Chromium and assert what a reader needs: no error, nothing fetched, every image
    drawn, and a first-screen screenshot of the window's size that is a picture, not a blank page."""
    check = open_in_chromium(html, png, width=width, height=height)
    assert not check.problems, f"{html} in Chromium:\n" + "\n".join(check.problems)
    assert check.images_total > 0, f"{html} has no images to check"
    assert check.images_rendered == check.images_total
    assert _png_size(png) == (width, height)
    assert png.stat().st_size > MIN_SCREENSHOT_BYTES, f"screenshot {png} is only {png.stat().st_size} bytes"
    assert _distinct_colours(png) > 16, f"screenshot {png} is nearly one colour"
    return check


def _small_report(path: Path) -> Report:
    rng = np.random.default_rng(7)
    y = rng.binomial(1, 0.08, 5_000)
    p_model = np.clip(0.08 + 0.10 * (y - 0.08) + rng.normal(0, 0.04, y.size), 0.001, 0.999)
    p_baseline = np.clip(0.08 + rng.normal(0, 0.03, y.size), 0.001, 0.999)
    models = {"model": (y, p_model), "baseline": (y, p_baseline)}
    report = Report("Browser check — small validation report")
    report.add_section("Summary")
    report.add_text("Random data, **two** models; the figures below must render offline.")
    report.add_table("Counts", pd.DataFrame({"rows": [y.size], "bads": [int(y.sum())], "bad_rate": [y.mean()]}))
    report.add_figure("ROC", roc_figure(models))
    report.add_figure("Calibration", calibration_figure(models))
    report.write(path)
    return report


def _page(tmp_path: Path, body: str) -> Path:
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>probe</title></head><body>{body}</body></html>")
    return page


def test_small_report_opens_with_every_figure_drawn_and_no_error(tmp_path):
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    report = _small_report(html)
    check = check_report_in_browser(html, png)
    assert check.title == report.title
    assert check.images_total == report.n_figures == 2


@pytest.mark.parametrize("data", [TRUNCATED_PNG, NOT_A_PNG, "@@not base64@@"], ids=["truncated", "garbage", "bad-b64"])
def test_a_corrupt_embedded_image_is_reported_as_not_rendered(tmp_path, data):
    body = (f'<img alt="good" src="data:image/png;base64,{GOOD_PNG}">'
            f'<img alt="corrupt" src="data:image/png;base64,{data}">')
    check = open_in_chromium(_page(tmp_path, body), tmp_path / "shot.png")
    assert (check.images_total, check.images_rendered) == (2, 1)
    assert check.broken_images == ["corrupt"]


def test_a_script_error_and_a_console_error_are_reported(tmp_path):
    body = "<p>text</p><script>console.error('seen by the console'); notDefinedAnywhere();</script>"
    check = open_in_chromium(_page(tmp_path, body), tmp_path / "shot.png")
    assert any("seen by the console" in e for e in check.errors)
    assert any("notDefinedAnywhere" in e for e in check.errors)


def test_a_request_to_the_network_is_blocked_and_reported(tmp_path):
    body = '<img alt="remote" src="http://127.0.0.1:9/figure.png">'  # loopback only, and blocked before it is sent
    check = open_in_chromium(_page(tmp_path, body), tmp_path / "shot.png")
    assert check.blocked_requests == ["http://127.0.0.1:9/figure.png"]
    assert check.broken_images == ["remote"]


def test_a_clean_page_has_no_problems_and_its_screenshot_has_the_window_size(tmp_path):
    check = open_in_chromium(_page(tmp_path, f'<img alt="dot" src="data:image/png;base64,{GOOD_PNG}">'),
                             tmp_path / "shot.png", width=800, height=600)
    assert check.problems == []
    assert (check.title, check.images_total, check.images_rendered) == ("probe", 1, 1)
    assert _png_size(tmp_path / "shot.png") == (800, 600)


def test_a_page_that_never_finishes_loading_times_out_with_a_clear_error(tmp_path):
    body = "<script>const end = Date.now() + 60000; while (Date.now() < end) {}</script>"
    with pytest.raises(BrowserError, match="timeout"):
        open_in_chromium(_page(tmp_path, body), tmp_path / "shot.png", timeout=3)
