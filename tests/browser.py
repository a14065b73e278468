"""Open an HTML page in headless Chromium, as a reader would, and say what it showed.

Test support, not product code: the validation report must open offline in a real browser with every figure
drawn and no script error. Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
NUL-separated JSON on file descriptors 3 and 4), so one launch loads the page, gathers its errors, counts its
images and takes the screenshot, with nothing but the standard library. Every request other than file: and
data: is failed before it leaves the browser, and listed: a self-contained report fetches nothing.

    python tests/browser.py REPORT.html OUT.png     # the first screen as a PNG, and what the page showed
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOCAL_SCHEMES = ("file:", "data:", "about:")

# Waits for every <img> to settle (loaded or failed), then counts the ones that show a picture: complete, with a
# width, decodable, and with at least one pixel that is not transparent when drawn (a PNG cut short after its
# header has a width and decodes, yet draws nothing).
IMAGES_JS = """
(async () => {
  const shows = async img => {
    if (!(img.complete && img.naturalWidth > 0)) return false;
    try { await img.decode(); } catch (e) { return false; }
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let k = 3; k < px.length; k += 4) if (px[k] > 0) return true;
    return false;
  };
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const shown = await Promise.all(imgs.map(shows));
  return {total: imgs.length, rendered: shown.filter(Boolean).length,
          broken: imgs.filter((_, k) => !shown[k]).map(i => i.alt || i.src.slice(0, 60))};
})()
"""


class BrowserError(RuntimeError):
    """Chromium could not be found, started, or did not answer in time."""


@dataclass
class PageCheck:
    """What a page showed in the browser: its title, its images, and everything that went wrong."""

    title: str
    images_total: int
    images_rendered: int
    broken_images: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console.error, browser log errors
    blocked_requests: list[str] = field(default_factory=list)  # anything the page tried to fetch from outside
    png: Path | None = None

    @property
    def problems(self) -> list[str]:
        """Each failure in words; empty when the page loaded cleanly and drew every image."""
        out = [f"error: {e}" for e in self.errors]
        out += [f"image not rendered: {b}" for b in self.broken_images]
        out += [f"tried to fetch: {u}" for u in self.blocked_requests]
        return out


def find_chromium() -> str | None:
    """The chromium binary on PATH (Debian's package name first), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class _Pipe:
    """The DevTools protocol over the two pipes: send a command, wait for its answer, keep the events.

    While it waits it answers the page's paused requests (`Fetch.requestPaused`): local ones go on, every other
    one fails before it leaves the browser and is listed in `blocked`.
    """

    def __init__(self, to_browser: int, from_browser: int, deadline: float) -> None:
        self.out, self.inp, self.deadline = to_browser, from_browser, deadline
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []
        self.blocked: list[str] = []

    def _send(self, method: str, session: str | None, params: dict) -> int:
        self.next_id += 1
        command = {"id": self.next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self.out, json.dumps(command).encode() + b"\0")
        return self.next_id

    def _read(self, waiting_for: str) -> dict:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise BrowserError(f"chromium did not finish before the timeout (waiting for {waiting_for})")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium exited early (waiting for {waiting_for})")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        message = json.loads(message)
        if message.get("method") == "Fetch.requestPaused":
            url, request_id = message["params"]["request"]["url"], message["params"]["requestId"]
            if url.startswith(LOCAL_SCHEMES):
                self._send("Fetch.continueRequest", message.get("sessionId"), {"requestId": request_id})
            else:
                self.blocked.append(url)
                self._send("Fetch.failRequest", message.get("sessionId"),
                           {"requestId": request_id, "errorReason": "BlockedByClient"})
        return message

    def call(self, method: str, session: str | None = None, **params) -> dict:
        sent = self._send(method, session, params)
        while (message := self._read(method)).get("id") != sent:
            self.events.append(message)
        if "error" in message:
            raise BrowserError(f"{method} failed: {message['error'].get('message')}")
        return message.get("result", {})

    def wait_for(self, method: str) -> dict:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(method))
        return next(e for e in self.events if e.get("method") == method)


def _errors(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error / console.assert calls, and the browser's own error log entries."""
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(p["entry"].get("text", ""))
    return out


def _load(pipe: _Pipe, url: str, width: int, height: int) -> str:
    """Open `url` in a new page (network requests intercepted) and wait for its load event; the session id."""
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session)
    pipe.call("Fetch.enable", session, patterns=[{"urlPattern": "*"}])
    pipe.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1,
              mobile=False)
    pipe.call("Page.navigate", session, url=url)
    pipe.wait_for("Page.loadEventFired")
    return session


def _inspect(pipe: _Pipe, session: str, png: Path) -> dict:
    """Count the images once all have settled, read the title, and write the first screen to `png`."""
    images = pipe.call("Runtime.evaluate", session, expression=IMAGES_JS, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in images:
        raise BrowserError(f"the image check failed in the page: {images['exceptionDetails'].get('text')}")
    found = images["result"]["value"]
    title = pipe.call("Runtime.evaluate", session, expression="document.title", returnByValue=True)
    shot = pipe.call("Page.captureScreenshot", session, format="png")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    return {"title": title["result"].get("value", ""), **found}


def _as_fds_3_and_4(commands: int, answers: int) -> None:
    """In the child: the browser reads commands on fd 3 and writes answers on fd 4 (moved clear of 3-4 first)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands, answers)]
    os.dup2(high[0], 3)
    os.dup2(high[1], 4)


def open_in_chromium(html: Path, png: Path, width: int = 1280, height: int = 900, timeout: float = 60.0) -> PageCheck:
    """Load `html` in a fresh headless Chromium (own profile, no network), check it, screenshot its first screen.

    Raises BrowserError when Chromium is missing, fails to start, or does not finish within `timeout` seconds.
    """
    html, png = Path(html).resolve(), Path(png)
    if not html.is_file():
        raise FileNotFoundError(f"no page to open at {html}")
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH: install Debian's package with `apt-get install chromium`")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, pass_fds=(3, 4), start_new_session=True,
                                preexec_fn=lambda: _as_fds_3_and_4(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r, time.monotonic() + timeout)
        try:
            session = _load(pipe, html.as_uri(), width, height)
            found = _inspect(pipe, session, png)
            pipe.call("Browser.close")
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:  # timed out or failed: end the browser and its renderers, its own group
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)
    return PageCheck(title=found["title"], images_total=found["total"], images_rendered=found["rendered"],
                     broken_images=found["broken"], errors=_errors(pipe.events), blocked_requests=pipe.blocked, png=png)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/browser.py REPORT.html OUT.png", file=sys.stderr)
        return 2
    check = open_in_chromium(Path(argv[0]), Path(argv[1]))
    print(f"{check.title!r}: {check.images_rendered}/{check.images_total} images rendered; first screen -> {argv[1]}")
    for problem in check.problems:
        print(f"  {problem}")
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
