"""`sealwatch replay` and `sealwatch check`, run as real subprocesses (CONTRACT §1, §3)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEALWATCH = str(ROOT / ".venv" / "bin" / "sealwatch")
SCENARIOS = ROOT / "deploy" / "examples" / "scenarios"
GOLDEN = SCENARIOS / "airlock-and-jammer.jsonl"


def sealwatch(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEALWATCH, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def alerts(stdout: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def triples(stdout: str) -> list[tuple[str, str, str]]:
    return [(a["policy"], a["subject"], a["state"]) for a in alerts(stdout)]


def event(ts: str, device: str, type: str, **fields: object) -> str:
    return json.dumps({"ts": ts, "device": device, "type": type, **fields})


# -- replay ---------------------------------------------------------------------------------


def test_golden_scenario_gives_exactly_its_expected_alerts(site_path: Path) -> None:
    expected = [
        json.loads(x)
        for x in (SCENARIOS / "airlock-and-jammer.expected.jsonl").read_text().splitlines()
        if x.strip()
    ]
    p = sealwatch("replay", "--config", site_path, GOLDEN, "--strict")
    assert (p.returncode, p.stderr) == (0, "")
    got = alerts(p.stdout)
    assert [(a["ts"], a["policy"], a["subject"], a["state"]) for a in got] == [
        (e["ts"], e["policy"], e["subject"], e["state"]) for e in expected
    ]
    for a in got:
        assert set(a) == {
            "ts",
            "alert_id",
            "policy",
            "subject",
            "severity",
            "state",
            "clause",
            "message",
        }
        assert a["severity"] == "critical" and a["clause"] in ("EXAM-2.7.3", "EXAM-2.7.8")
    assert got[0]["alert_id"] == got[1]["alert_id"] != got[2]["alert_id"]


def test_replay_from_stdin_gives_the_same_output_as_from_the_file(site_path: Path) -> None:
    from_file = sealwatch("replay", "--config", site_path, GOLDEN)
    from_stdin = sealwatch("replay", "--config", site_path, "-", stdin=GOLDEN.read_text())
    assert from_stdin.returncode == 0
    assert from_stdin.stdout == from_file.stdout


def test_until_runs_the_clock_on_after_the_last_event(site_path: Path) -> None:
    lines = GOLDEN.read_text()
    short = sealwatch("replay", "--config", site_path, "-", stdin=lines)
    longer = sealwatch(
        "replay", "--config", site_path, "-", "--until", "2027-05-25T14:05:00+08:00", stdin=lines
    )
    extra = triples(longer.stdout)[len(triples(short.stdout)) :]
    assert triples(longer.stdout)[:4] == triples(short.stdout)
    # devices stop at 14:02:30: the jammers' status times out, everything falls silent
    assert ("jammer-uptime", "jam-work", "raised") in extra
    assert ("device-offline", "cam-gate", "raised") in extra
    assert all(a["ts"] <= "2027-05-25T14:05:00+08:00" for a in alerts(longer.stdout))


def test_rejected_lines_are_reported_and_skipped_and_strict_fails(site_path: Path) -> None:
    lines = (
        "\n".join(
            [
                event("2027-05-25T14:00:00+08:00", "press-hall-door", "door.forced"),
                "this is not json",
                event("2027-05-25T14:00:01+08:00", "no-such-door", "door.opened"),
                "",
                event("2027-05-25T14:00:02", "press-hall-door", "door.closed"),
                event("2027-05-25T13:59:00+08:00", "press-hall-door", "door.closed"),
                event("2027-05-25T14:00:03+08:00", "press-hall-door", "door.closed"),
            ]
        )
        + "\n"
    )
    lax = sealwatch("replay", "--config", site_path, "-", stdin=lines)
    strict = sealwatch("replay", "--config", site_path, "-", "--strict", stdin=lines)
    assert lax.returncode == 0
    assert strict.returncode == 1
    assert lax.stdout == strict.stdout
    errors = lax.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 5", "line 6"]
    assert "not valid JSON" in errors[0]
    assert "unknown device 'no-such-door'" in errors[1]
    assert "offset" in errors[2]
    assert "out of order" in errors[3]
    assert [t for t in triples(lax.stdout) if t[0] == "door-forced"] == [
        ("door-forced", "press-hall-door", "raised"),
        ("door-forced", "press-hall-door", "cleared"),
    ]


def test_the_lines_of_issue_8_are_reported_and_replay_goes_on(site_path: Path) -> None:
    """`faults: null` used to raise TypeError; a `ts` in year 9999 OverflowError on output."""
    lines = (
        "\n".join(
            [
                event(
                    "2027-05-25T14:00:00+08:00",
                    "jam-work",
                    "jammer.status",
                    output=True,
                    bands={"gsm900": 33.0},
                    faults=None,
                ),
                event("9999-12-31T23:59:59-14:00", "press-hall-door", "door.forced"),
                event("0001-01-01T00:00:00+14:00", "press-hall-door", "door.forced"),
                event(
                    "2027-05-25T14:00:01+08:00",
                    "jam-work",
                    "jammer.status",
                    output=True,
                    bands={"gsm900": 33.0},
                    faults=0,
                ),
                event("2027-05-25T14:00:02+08:00", "press-hall-door", "door.forced"),
            ]
        )
        + "\n"
    )
    p = sealwatch("replay", "--config", site_path, "-", stdin=lines)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    errors = p.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4"]
    assert errors[0].startswith("line 2: field 'ts' is too late (9999-12-31T23:59:59-14:00)")
    assert "2000-01-01T00:00:00Z" in errors[0] and "2100-01-01T00:00:00Z" in errors[0]
    assert errors[1].startswith("line 3: field 'ts' is too early")
    assert errors[2] == "line 4: field 'faults' must be a list of strings"
    assert ("door-forced", "press-hall-door", "raised") in triples(p.stdout)
    assert ("jammer-uptime", "jam-work/cdma800", "raised") in triples(p.stdout)
    strict = sealwatch("replay", "--config", site_path, "-", "--strict", stdin=lines)
    assert strict.returncode == 1 and strict.stdout == p.stdout


@pytest.mark.parametrize("until", ["2100-01-01T00:00:00Z", "1999-12-31T23:59:59+00:00"])
def test_until_outside_2000_to_2100_is_refused(site_path: Path, until: str) -> None:
    p = sealwatch("replay", "--config", site_path, GOLDEN, "--until", until)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("--until is too ") and "2100-01-01T00:00:00Z" in p.stderr


def test_unknown_alert_ack_is_a_rejected_line(site_path: Path) -> None:
    lines = (
        event("2027-05-25T14:00:00+08:00", "console-1", "alert.ack", alert_id="nope", badge="S2001")
        + "\n"
    )
    p = sealwatch("replay", "--config", site_path, "-", "--strict", stdin=lines)
    assert p.returncode == 1
    assert p.stderr.startswith("line 1: unknown or already closed alert 'nope'")


def test_agency_replay_of_a_meeting(agency_path: Path) -> None:
    lines = "\n".join(
        [
            event("2027-03-10T10:00:00+08:00", "pd-meeting", "phone.detected"),
            event("2027-03-10T13:00:00+08:00", "pd-meeting", "phone.detected"),
        ]
    )
    p = sealwatch("replay", "--config", agency_path, "-", stdin=lines)
    assert [
        (a["ts"], a["subject"])
        for a in alerts(p.stdout)
        if a["policy"] == "prohibited-device" and a["state"] == "raised"
    ] == [("2027-03-10T10:00:00+08:00", "pd-meeting")]


# -- check ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["site.yaml", "agency.yaml"])
def test_check_accepts_both_reference_sites(name: str) -> None:
    p = sealwatch("check", "--config", ROOT / "deploy" / "examples" / name)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[0] == "ok"
    assert "sealed area:" in p.stdout and "seals (1):" in p.stdout


BROKEN = """
site: {id: broken, name: Broken works, timezone: Asia/Shanghai, colour: blue}
zones:
  - {id: outside,     kind: public}
  - {id: screening,   kind: screening}
  - {id: work,        kind: sealed_work}
  - {id: living,      kind: sealed_living}
  - {id: store,       kind: sealed_livin}
  - {id: secure-room, kind: key_part}
doors:
  - {id: gate-outer, a: outside, b: screening}
  - {id: gate-inner, a: screening, b: work}
  - {id: link, a: work, b: living}
  - {id: safe-door, a: work, b: secure-rom}
  - {id: work, a: outside, b: screening}
entrance: {outer: gate-outer, inner: link}
seals:
  - {id: s1, name: Seal, classification: secret,
     start: "2027-05-20T08:00:00", end: "2027-06-08T18:00:00+08:00"}
policies: {video_retention_days: 60}
camras: []
"""


def test_check_reports_every_error_of_a_broken_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    p = sealwatch("check", "--config", path)
    assert p.returncode == 1
    out = p.stdout
    for expected in (
        "site.colour: unknown key",
        "zones[4].kind: 'sealed_livin' is not one of",
        "(did you mean 'sealed_living'?)",
        "zones[5]: key part 'secure-room' needs a classification",
        "doors[3].b: unknown zone 'secure-rom' (did you mean 'secure-room'?)",
        "doors[4].id: duplicate id 'work'",
        "entrance.inner: door 'link' is not a boundary door",
        "seals[0].start: time '2027-05-20T08:00:00' has no offset",
        "policies.video_retention_days: 60 is below the 90 days",
        "camras: unknown key (did you mean 'cameras'?)",
    ):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert out.splitlines()[-1].startswith("9 error(s)")
