"""The seal archive rendered as an auditor's document: HTML (deterministic, inline SVG) and PDF."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.archive.render import LABELS, render_html, render_pdf

FIXTURE = Path(__file__).parent / "data" / "archive_fixture.json"


@pytest.fixture
def archive() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def test_html_has_the_seal_classification_bands_and_charts(archive: dict[str, Any]) -> None:
    page = render_html(archive)
    assert "2025年普通高考 数学试卷印制" in page
    assert "绝密" in page  # top_secret, in Chinese
    assert "杭州市教育考试院 试卷印制点" in page
    assert "Asia/Shanghai" in page
    for j in archive["jammers"]:
        assert j["band"] in page
    assert page.count("<svg") == 3  # jammer uptime, alerts per hour, headcount
    # every interruption is a red gap in the jammer chart
    n_gaps = sum(len(j["interruptions"]) for j in archive["jammers"])
    assert page.count('fill="#d01010"') == n_gaps
    for role in ("检查人", "监督员", "保密员"):
        assert role in page
    # every alert, its history and who acknowledged it
    for al in archive["alerts"]:
        assert al["alert_id"] in page
    assert "更换功放模块" in page
    assert "值班但未刷卡" in page  # O4002 on duty, never badged
    assert "0:03:07" in page  # a 187 s interruption, to the second


def test_html_is_self_contained(archive: dict[str, Any]) -> None:
    page = render_html(archive)
    # nothing runs: the one script element is the signed document as data
    assert page.count("<script") == 1
    assert '<script type="application/json" id="sealwatch-archive">' in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "@import" not in page and "url(" not in page


def test_html_in_english(archive: dict[str, Any]) -> None:
    page = render_html(archive, lang="en")
    assert "Seal archive" in page and "TOP SECRET" in page
    assert "Secrecy officer" in page
    assert "封闭期档案" not in page
    with pytest.raises(ValueError):
        render_html(archive, lang="fr")


def test_labels_match_between_languages() -> None:
    assert LABELS["zh"].keys() == LABELS["en"].keys()


def test_same_archive_same_bytes(archive: dict[str, Any]) -> None:
    first = render_html(archive).encode()
    assert render_html(copy.deepcopy(archive)).encode() == first
    assert render_html(archive, "en").encode() == render_html(archive, "en").encode()


def test_escapes_what_it_shows(archive: dict[str, Any]) -> None:
    archive["seal"]["name"] = "<b>x</b> & y"
    archive["alerts"][0]["history"][1]["comment"] = "<script>alert(1)</script>"
    page = render_html(archive)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; y" in page
    assert "<script>" not in page


def test_sparse_archive_renders(archive: dict[str, Any]) -> None:
    """An open seal with nothing recorded yet still gives a page with 'none' rows."""
    sparse = {
        "format": "sealwatch-archive/1",
        "site": archive["site"],
        "seal": {**archive["seal"], "end": None, "ended_by": None, "status": "open"},
        "ledger": archive["ledger"],
        "preseal": None,
    }
    page = render_html(sparse)
    assert "无" in page and "本封闭期无封闭前检查记录" in page


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_renders_pages_that_are_not_blank(
    archive: dict[str, Any], lang: str, tmp_path: Path
) -> None:
    from PIL import Image

    pdf = render_pdf(archive, lang)
    assert pdf.startswith(b"%PDF")
    (tmp_path / "a.pdf").write_bytes(pdf)
    info = subprocess.run(
        ["pdfinfo", str(tmp_path / "a.pdf")], capture_output=True, text=True, check=True
    ).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    assert pages >= 2
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            str(tmp_path / "a.pdf"),
            str(tmp_path / "p"),
        ],
        check=True,
    )
    png = next(tmp_path.glob("p*.png"))
    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    dark = int((px.sum(axis=2) < 600).sum())
    assert dark > 0.005 * px.shape[0] * px.shape[1]  # text, tables and the stamp
    # the classification stamp is red
    red = int(((px[..., 0] > 150) & (px[..., 1] < 80) & (px[..., 2] < 80)).sum())
    assert red > 50
