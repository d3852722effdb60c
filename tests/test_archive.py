"""The seal archive (issue 10), built offline from a store the real pipeline wrote: the figures
(jammer uptime to the second, entries and exits, time to acknowledge, an operator on duty who
never badged), and the same closed seal gives the same bytes, twice and from the CLI with the
daemon stopped."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.archive import build_archive, dumps
from daemon.archive.tables import render_tables
from daemon.config import load_settings
from daemon.pipeline.flow import Pipeline, new_metrics
from daemon.pipeline.items import Incoming, Kind
from daemon.store import Store
from daemon.view import _open_ro
from policies.site import load_site
from policies.timefmt import format_ts, parse_ts
from tests.support.daemon import EXAMPLE_SITE, sealwatch_cli

T0 = parse_ts("2026-06-07T08:00:00+08:00")
S = 1_000_000
SITE = load_site(EXAMPLE_SITE)
DROP_S = 17  # jam-work gsm900 below its floor for exactly this long
ACK_AFTER_S = 45  # the interruption's alert is acknowledged this long after it was raised
SEAL = "s-arch"
OLD, NEW = "2026-03-01T00:00:00+08:00", "2026-06-07T08:00:00+08:00"
NEW2 = "2026-06-07T08:03:00+08:00"
PRECHECK_AT = 8  # S2001 records the pre-seal checks, two seconds before the seal starts
REMEDIATION = "cam-press: recordings folder to be mounted before the next seal"


def ev(now: int, device: str, body: dict[str, object]) -> Incoming:
    payload = orjson.dumps({"ts": format_ts(now, SITE.tz), **body})
    return Incoming(Kind.EVENT, payload, "mqtt", now, topic=f"t/{device}", device=device)


def bands(jid: str, low: str | None = None) -> dict[str, float]:
    return {b.id: (10.0 if b.id == low else 35.0) for b in SITE.jammers[jid].bands}


async def _write_store(data: Path) -> dict[str, Any]:
    settings = load_settings(SITE, {"SEALWATCH_DATA_DIR": str(data)})
    now = [T0]
    store = Store(settings.db_path)
    p = Pipeline(SITE, settings, store, metrics=new_metrics(), clock=lambda: now[0])
    p.start()
    p.release()
    facts: dict[str, Any] = {}

    def at(t_s: int, *bodies: tuple[str, dict[str, object]]) -> None:
        now[0] = T0 + t_s * S
        p.tick()
        p.process([ev(now[0], device, body) for device, body in bodies])

    g = "gate-outer"
    c = "console-1"
    drop, back = 100, 100 + DROP_S  # gsm900 of jam-work below its floor in between
    ack_at = drop + ACK_AFTER_S
    seal_start = {"type": "seal.start", "seal": SEAL, "name": "Paper C"}
    plan: dict[int, list[tuple[str, dict[str, object]]]] = {
        # O4001 goes on duty before the seal and never badges anywhere
        0: [(c, {"type": "operator.duty", "badge": "O4001", "state": "on"})],
        10: [(c, {**seal_start, "classification": "secret", "badge": "S2001"})],
        # B1001 and B1002 come in through the airlock; B1002 leaves again
        20: [(g, {"type": "badge.granted", "badge": "B1001", "direction": "in"})],
        25: [("gate-inner", {"type": "badge.granted", "badge": "B1001", "direction": "in"})],
        30: [(g, {"type": "badge.granted", "badge": "B1002", "direction": "in"})],
        35: [("gate-inner", {"type": "badge.granted", "badge": "B1002", "direction": "in"})],
        105: [("cp-north", {"type": "patrol.checkpoint", "badge": "G3001"})],
        5: [("cam-gate", {"type": "recording.inventory", "oldest": OLD, "newest": NEW})],
        200: [
            ("cam-gate", {"type": "recording.inventory", "oldest": OLD, "newest": NEW2}),
            (c, {"type": "inspection.done", "zone": "press-hall", "badge": "S2002"}),
            (c, {"type": "review.done", "camera": "cam-gate", "badge": "S2002"}),
            (
                "duty-phone",
                {
                    "type": "call.recorded",
                    "start": "2026-06-07T00:03:00Z",
                    "end": "2026-06-07T00:04:00Z",
                    "recording": "call-1.wav",
                    "supervisors": ["S2002", "S2001"],
                },
            ),
        ],
        300: [("gate-inner", {"type": "badge.granted", "badge": "B1002", "direction": "out"})],
        305: [(g, {"type": "badge.granted", "badge": "B1002", "direction": "out"})],
        310: [(c, {"type": "seal.end", "seal": SEAL, "badge": "S2002"})],
    }
    for t in sorted({*range(5, 311, 5), drop, back, ack_at, PRECHECK_AT, *plan}):
        low = "gsm900" if drop <= t < back else None
        if t % 5 == 0 or t in (drop, back):
            at(
                t,
                (
                    "jam-work",
                    {"type": "jammer.status", "output": True, "bands": bands("jam-work", low)},
                ),
                (
                    "jam-living",
                    {"type": "jammer.status", "output": True, "bands": bands("jam-living")},
                ),
            )
        if t == drop:
            facts["jam_alert"] = next(
                a.id
                for a in p.stage.engine.open_alerts()
                if a.policy == "jammer-uptime" and a.subject == "jam-work/gsm900"
            )
        if t == ack_at:
            ack = {
                "type": "alert.ack",
                "alert_id": facts["jam_alert"],
                "badge": "O4001",
                "comment": "band back, jammer checked",
            }
            said = await p.comment(facts["jam_alert"], "O4001", "vendor called", "cli")
            assert said.accepted, said
            at(t, (c, ack))
        if t == PRECHECK_AT:  # the written pre-seal record, from the live checks
            preseal = p.stage.engine.preseal
            assert preseal is not None
            record = {"type": "precheck.recorded", "badge": "S2001", **preseal.record()}
            at(t, (c, {**record, "remediation": REMEDIATION}))
        if t in plan:
            at(t, *plan[t])
    # after the seal: must not change its archive
    at(400, ("gate-outer", {"type": "badge.granted", "badge": "B1003", "direction": "in"}))
    await p.stop(snapshot=True)
    store.close()
    return facts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    data = tmp_path_factory.mktemp("archive")
    facts = asyncio.run(_write_store(data))
    return data, facts


def archive(data: Path) -> dict[str, Any]:
    conn = _open_ro(data / "sealwatch.db")
    try:
        doc = build_archive(conn, SITE, SEAL)
    finally:
        conn.close()
    assert doc is not None
    return doc


def test_the_archive_has_every_section(built: tuple[Path, dict[str, Any]]) -> None:
    doc = archive(built[0])
    assert set(doc) == {
        "format",
        "site",
        "seal",
        "ledger",
        "personnel",
        "movements",
        "jammers",
        "alerts",
        "alerts_per_hour",
        "patrol",
        "duty_phone",
        "video_retention",
        "inspections",
        "reviews",
        "preseal",
        "alarm_load",
        "headcount",
    }
    assert doc["format"] == "sealwatch-archive/1"
    assert doc["site"]["id"] == "jb-print" and doc["site"]["timezone"] == "Asia/Shanghai"
    assert doc["site"]["fingerprint"] == doc["site"]["fingerprint_in_ledger"]
    seal = doc["seal"]
    assert seal["start"] == "2026-06-07T08:00:10+08:00"
    assert seal["end"] == "2026-06-07T08:05:10+08:00"
    assert seal["status"] == "ended" and seal["duration_s"] == 300
    ledger = doc["ledger"]
    assert ledger["head_seq"] == ledger["last_seq"] and ledger["first_seq"] <= ledger["last_seq"]


def test_jammer_uptime_per_band_to_the_second(built: tuple[Path, dict[str, Any]]) -> None:
    data, facts = built
    doc = archive(data)
    by = {(j["jammer"], j["band"]): j for j in doc["jammers"]}
    assert len(by) == 10
    gsm = by[("jam-work", "gsm900")]
    assert gsm["seal_s"] == 300
    assert gsm["uptime_s"] == 300 - DROP_S and gsm["downtime_s"] == DROP_S
    [it] = gsm["interruptions"]
    assert it["duration_s"] == DROP_S and it["alert_id"] == facts["jam_alert"]
    assert it["start"] == "2026-06-07T08:01:40+08:00"
    assert it["end"] == "2026-06-07T08:01:57+08:00"
    assert it["acked_by"] == "O4001"
    assert it["acked_at"] == format_ts(T0 + (100 + ACK_AFTER_S) * S, SITE.tz)
    for key, j in by.items():
        if key != ("jam-work", "gsm900"):
            assert j["uptime_s"] == 300 and j["interruptions"] == [], key


def test_entries_and_exits_and_personnel(built: tuple[Path, dict[str, Any]]) -> None:
    doc = archive(built[0])
    moves = [(m["badge"], m["door"], m["kind"]) for m in doc["movements"]]
    assert moves == [
        ("B1001", "gate-outer", "entry"),
        ("B1001", "gate-inner", "entry"),
        ("B1002", "gate-outer", "entry"),
        ("B1002", "gate-inner", "entry"),
        ("B1002", "gate-inner", "exit"),
        ("B1002", "gate-outer", "exit"),
    ]
    assert doc["movements"][0]["ts"] == "2026-06-07T08:00:20+08:00"
    people = {p["badge"]: p for p in doc["personnel"]}
    assert set(people) == {"B1001", "B1002", "O4001"}  # B1003 came after the seal
    op = people["O4001"]
    assert op["badged"] is False and op["role"] == "operator" and op["name"] == "Sun Li"
    assert op["on_duty"] == [["2026-06-07T08:00:00+08:00", None]]
    assert people["B1001"]["badged"] and people["B1001"]["on_duty"] == []
    heads = {h["zone"]: h["max"] for h in doc["headcount"]}
    assert heads["work"] == 2 and heads["screening"] == 1


def test_alert_history_and_time_to_acknowledge(built: tuple[Path, dict[str, Any]]) -> None:
    data, facts = built
    doc = archive(data)
    alert = next(a for a in doc["alerts"] if a["alert_id"] == facts["jam_alert"])
    assert alert["time_to_ack_s"] == ACK_AFTER_S
    assert alert["policy"] == "jammer-uptime" and alert["clause"] == "EXAM-2.7.8"
    states = [(h["state"], h["by"], h["comment"]) for h in alert["history"]]
    assert states[:2] == [("raised", None, None), ("cleared", None, None)]
    assert ("acknowledged", "O4001", "band back, jammer checked") in states
    assert ("comment", "O4001", "vendor called") in states
    assert sum(h["count"] for h in doc["alerts_per_hour"]) == len(doc["alerts"])
    assert doc["alarm_load"]["operators"] == 1
    assert doc["patrol"]["interval_min"] == 60
    assert [(v["checkpoint"], v["badge"]) for v in doc["patrol"]["visits"]] == [
        ("cp-north", "G3001")
    ]
    assert doc["patrol"]["gaps"] == [
        {
            "checkpoint": "cp-south",
            "start": "2026-06-07T08:00:10+08:00",
            "end": "2026-06-07T08:05:10+08:00",
            "duration_s": 300,
        }
    ] or all(g["duration_s"] > 3600 for g in doc["patrol"]["gaps"])
    pre = doc["preseal"]
    assert pre["passed"] is False and pre["problems"] and pre["ts"] == doc["seal"]["start"]


def test_the_written_preseal_record(built: tuple[Path, dict[str, Any]]) -> None:
    doc = archive(built[0])
    record = doc["preseal"]["record"]
    assert record["ts"] == "2026-06-07T08:00:08+08:00"
    assert record["inspector"] == "S2001" and record["remediation"] == REMEDIATION
    assert record["passed"] is False and doc["seal"]["precheck"] == "failed"
    items = {i["item"]: i for i in record["items"]}
    assert len(items) == 9 and all(i["evidence"] for i in items.values())
    jammers = items["every jammer band above its floor, output on"]
    assert jammers["passed"] is True
    assert "jam-work/gsm900 35.0 dBm (floor 30.0)" in jammers["evidence"]
    staffed = items["monitoring room staffed"]
    assert staffed["passed"] is True and staffed["evidence"] == [
        "monitoring-room: O4001 on duty (need 1)"
    ]
    retention = items["video retention compliant"]
    assert not retention["passed"]
    assert "camera cam-press retention unknown: no inventory received" in retention["problems"]


def test_calls_cameras_inspections_and_reviews(built: tuple[Path, dict[str, Any]]) -> None:
    doc = archive(built[0])
    assert doc["duty_phone"] == [
        {
            "phone": "duty-phone",
            "start": "2026-06-07T08:03:00+08:00",
            "end": "2026-06-07T08:04:00+08:00",
            "recording": "call-1.wav",
            "supervisors": ["S2001", "S2002"],
        }
    ]
    cams = {v["camera"]: v for v in doc["video_retention"]}
    assert cams["cam-gate"]["at_start"]["newest"] == NEW
    assert cams["cam-gate"]["at_end"]["newest"] == NEW2
    assert cams["cam-gate"]["at_end"]["oldest"] == OLD
    assert cams["cam-press"]["at_start"] is None and cams["cam-press"]["at_end"] is None
    assert [(i["zone"], i["badge"]) for i in doc["inspections"]] == [("press-hall", "S2002")]
    assert [(r["camera"], r["badge"]) for r in doc["reviews"]] == [("cam-gate", "S2002")]


def test_a_closed_seal_gives_the_same_bytes_twice_and_from_the_cli(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, _facts = built
    once, twice = dumps(archive(data)), dumps(archive(data))
    assert once == twice
    out = tmp_path / "a.json"
    r = sealwatch_cli(
        "archive",
        SEAL,
        "--config",
        str(EXAMPLE_SITE),
        "--data-dir",
        str(data),
        "--format",
        "json",
        "--no-proofs",
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == once
    # CSV: one file per table, in a zip that is the same bytes twice, headers by language
    zips = []
    for name in ("a.zip", "b.zip"):
        r = sealwatch_cli(
            "archive",
            SEAL,
            "--config",
            str(EXAMPLE_SITE),
            "--data-dir",
            str(data),
            "--format",
            "csv",
            "--lang",
            "en",
            "-o",
            str(tmp_path / name),
        )
        assert r.returncode == 0, r.stderr
        zips.append((tmp_path / name).read_bytes())
    assert zips[0] == zips[1]
    with zipfile.ZipFile(io.BytesIO(zips[0])) as z:
        rows = list(csv.reader(io.StringIO(z.read("movements.csv").decode("utf-8-sig"))))
    assert rows[0] == ["time", "badge", "name", "door", "direction", "entry/exit"]
    assert len(rows) == 7
    zh = dict(render_tables(archive(data), "zh"))
    assert zh["movements.csv"].decode("utf-8-sig").startswith("时间,工牌")


def test_an_unknown_seal_is_refused(built: tuple[Path, dict[str, Any]]) -> None:
    r = sealwatch_cli("archive", "nope", "--config", str(EXAMPLE_SITE), "--data-dir", str(built[0]))
    assert r.returncode == 1 and "nope" in r.stderr


def test_the_real_archive_renders_to_html_and_pdf_from_the_cli(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The store's own archive (not a fixture) through `--format html|pdf`: the same HTML bytes
    twice, the seal's figures on the page, and a PDF whose first page is not blank."""
    import shutil
    import subprocess

    data, _facts = built

    def run(fmt: str, name: str, lang: str = "zh") -> Path:
        out = tmp_path / name
        r = sealwatch_cli(
            "archive", SEAL, "--config", str(EXAMPLE_SITE), "--data-dir", str(data),
            "--format", fmt, "--lang", lang, "-o", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return out

    html = run("html", "a.html").read_bytes()
    assert html == run("html", "b.html").read_bytes()
    text = html.decode()
    assert "<svg" in text and "gsm900" in text and SEAL in text
    assert "S2001" in text  # who started it
    pdf = run("pdf", "a.pdf", "en").read_bytes()
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: scripts/setup installs it")
    png = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(tmp_path / "a.pdf"), str(png)],
        check=True,
    )
    import cv2

    page = cv2.imread(str(next(tmp_path.glob("page*.png"))), cv2.IMREAD_GRAYSCALE)
    assert page is not None and (page < 128).sum() > 500  # text, not a blank page


def test_a_signed_archive_verifies_and_an_edited_figure_does_not(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    import orjson

    from daemon.audit import load_or_create_key

    data = tmp_path / "data"
    shutil.copytree(built[0], data)
    load_or_create_key(data / "audit-ed25519.key")  # what the daemon does on its first start
    out, again = tmp_path / "a.json", tmp_path / "b.json"
    for path in (out, again):
        r = sealwatch_cli(
            "archive", SEAL, "--config", str(EXAMPLE_SITE), "--data-dir", str(data),
            "-o", str(path),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    assert out.read_bytes() == again.read_bytes()  # Ed25519 is deterministic
    doc = orjson.loads(out.read_bytes())
    assert doc["signature"]["alg"] == "ed25519"

    def verify(path: Path, *extra: str) -> tuple[int, str]:
        r = sealwatch_cli("archive", "verify", str(path), *extra)
        return r.returncode, r.stdout + r.stderr

    pub = str(data / "audit-ed25519.key.pub")
    assert verify(out, "--public-key", pub)[0] == 0
    code, text = verify(out, "--config", str(EXAMPLE_SITE), "--data-dir", str(data))
    assert code == 0 and "matching the store" in text, text
    # one figure edited: the signature no longer matches
    doc["jammers"][0]["uptime_s"] += 1
    edited = tmp_path / "edited.json"
    edited.write_bytes(orjson.dumps(doc))
    code, text = verify(edited, "--public-key", pub)
    assert code == 1 and "signature does not match" in text, text
    # re-signed with another key: refused as not the site's
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from daemon.archive.sign import sign

    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps(sign(doc, Ed25519PrivateKey.generate())))
    code, text = verify(forged, "--config", str(EXAMPLE_SITE), "--data-dir", str(data))
    assert code == 1 and "another key" in text and "differs from what the store" in text, text


def test_inclusion_proofs_verify_without_the_store(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The JSON archive carries the rows and ledger records it was built from: `archive
    verify` with only the public key proves every figure against the signed head; an edited
    row, a dropped record or another site file is found."""
    import shutil

    from daemon.audit import load_or_create_key

    data = tmp_path / "data"
    shutil.copytree(built[0], data)
    load_or_create_key(data / "audit-ed25519.key")
    out = tmp_path / "a.json"
    r = sealwatch_cli(
        "archive", SEAL, "--config", str(EXAMPLE_SITE), "--data-dir", str(data), "-o", str(out)
    )
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(out.read_bytes())
    proofs = doc["proofs"]
    assert proofs["format"] == "sealwatch-proofs/1" and not proofs["beyond"]
    assert proofs["chain"]["records"][-1][0] == doc["ledger"]["head_seq"]
    assert {"events", "transitions", "actions", "seals"} <= set(proofs["rows"])
    pub = tmp_path / "site.pub"  # the auditor's machine: the archive and the public key only
    shutil.copy(data / "audit-ed25519.key.pub", pub)
    shutil.rmtree(data)

    def verify(d: dict[str, Any]) -> tuple[int, str]:
        path = tmp_path / "check.json"
        path.write_bytes(orjson.dumps(d))
        r = sealwatch_cli("archive", "verify", str(path), "--public-key", str(pub))
        return r.returncode, r.stdout + r.stderr

    code, text = verify(doc)
    assert code == 0 and "proven in the ledger" in text, text

    # a carried event edited (who passed the gate): its hash no longer matches the ledger
    edited = orjson.loads(out.read_bytes())
    events = edited["proofs"]["rows"]["events"]
    i = next(i for i, e in enumerate(events) if '"B1002"' in e[-1])
    events[i][-1] = events[i][-1].replace('"B1002"', '"B1003"')
    code, text = verify(edited)
    assert code == 1 and "differs from its hash in the ledger" in text, text

    # a ledger record dropped from the chain: it no longer reaches the signed head
    dropped = orjson.loads(out.read_bytes())
    del dropped["proofs"]["chain"]["records"][len(dropped["proofs"]["chain"]["records"]) // 2]
    code, text = verify(dropped)
    assert code == 1 and "signed head" in text, text

    # a row left out: the archive rebuilt from the rest is not the signed one
    missing = orjson.loads(out.read_bytes())
    trs = missing["proofs"]["rows"]["transitions"]
    del trs[next(i for i, t in enumerate(trs) if t[7] == "acknowledged")]
    code, text = verify(missing)
    assert code == 1 and "'alerts' is not what the proofs' rows give" in text, text

    # another site file (a renamed person): its fingerprint is not the signed one
    other = orjson.loads(out.read_bytes())
    other["proofs"]["site_file"] = other["proofs"]["site_file"].replace("Zhang Wei", "Zhang San")
    code, text = verify(other)
    assert code == 1 and "'site' is not what the proofs' rows give" in text, text


def test_an_html_archive_verifies_and_an_edited_page_does_not(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    from daemon.audit import load_or_create_key

    data = tmp_path / "data"
    shutil.copytree(built[0], data)
    load_or_create_key(data / "audit-ed25519.key")
    page = tmp_path / "a.html"
    for lang in ("zh", "en"):
        r = sealwatch_cli(
            "archive", SEAL, "--config", str(EXAMPLE_SITE), "--data-dir", str(data),
            "--format", "html", "--lang", lang, "-o", str(page),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        pub = str(data / "audit-ed25519.key.pub")
        ok = sealwatch_cli("archive", "verify", str(page), "--public-key", pub)
        assert ok.returncode == 0 and "archive genuine" in ok.stdout, ok.stdout + ok.stderr
    text = page.read_text(encoding="utf-8")
    assert "Paper C" in text
    page.write_text(text.replace("Paper C", "Paper D", 1), encoding="utf-8")
    bad = sealwatch_cli("archive", "verify", str(page), "--public-key", pub)
    assert bad.returncode == 1 and "not what its signed document renders" in bad.stderr, bad.stderr
