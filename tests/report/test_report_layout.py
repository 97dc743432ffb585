"""The HTML report as a person sees it: rendered by a real headless Chromium (Debian's) at
1280 px, on the widest report a sweep makes (two phases, an lr x depth grid, two archs, a
failed trial). Every table must fit the page, checked twice: the browser's own layout boxes,
and the screenshot's right margin, which stays blank unless something spills into it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from crafted import run, write
from PIL import Image

from bnorder.report.render import build_report

WIDTH = 1280
MEASURE = """<script>
window.addEventListener("load", () => {
  const right = document.body.getBoundingClientRect().right;
  const tables = [...document.querySelectorAll("table, img, ul, p")].map((el) => ({
    tag: el.tagName, right: el.getBoundingClientRect().right,
    caption: (el.querySelector("caption") || el).textContent.slice(0, 60)}));
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({
    page: document.documentElement.scrollWidth, viewport: window.innerWidth, body: right,
    tables: tables.length, wide: tables.filter((t) => t.right > right + 0.5)});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed")
    return found


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    flags += [f"--window-size={WIDTH},900", "--virtual-time-budget=5000"]
    return subprocess.run(
        [chromium(), *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(1)
    runs = []
    for phase in ("grid", "evaluate"):
        for arch in ("cnn", "mlp"):
            for lr in (0.0003, 0.001, 0.003, 0.01, 0.03):
                for depth in (2, 4):
                    for o, shift in (("case1", 0.0), ("case2", 0.01), ("case3", 0.0)):
                        for s in range(3):
                            acc = round(0.7 + shift + rng.normal(0, 0.01), 4)
                            runs.append(run(o, s, acc, arch=arch, lr=lr, depth=depth, phase=phase))
    runs.append(run("case3", 3, 0.1, arch="cnn", lr=0.03, depth=4, status="failed"))
    results = write(tmp_path_factory.mktemp("wide"), runs)
    return build_report([results], results / "report").html


def test_every_table_fits_a_1280px_page(wide_report: Path, tmp_path: Path) -> None:
    page = tmp_path / "measured.html"
    page.write_text(wide_report.read_text().replace("</body>", MEASURE + "</body>"))
    dom = _browser("--dump-dom", page.as_uri()).stdout
    layout = json.loads(dom.split('<pre id="layout">', 1)[1].split("</pre>", 1)[0])
    assert layout["viewport"] == WIDTH
    assert layout["tables"] > 20
    assert layout["page"] <= WIDTH, layout  # no horizontal scrolling
    assert layout["wide"] == [], layout  # nothing spills past the text column


def test_the_screenshot_has_blank_margins_and_shows_the_report(
    wide_report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,8000", wide_report.as_uri())
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape[1] == WIDTH
    right_margin = image[:, WIDTH - 60 :]
    assert (right_margin > 250).all()  # a table cut off at the edge would leave ink here
    column = image[:, 100 : WIDTH - 100]
    assert (column < 128).mean() > 0.01  # the report itself is there: text and figures
