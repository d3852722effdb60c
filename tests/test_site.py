"""The site model (policies/site.py, CONTRACT §1): both references load, every error is named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.site import Site, SiteError, load_site, parse_site

MINIMAL: dict[str, Any] = {
    "site": {"id": "mini", "name": "Mini works", "timezone": "Asia/Shanghai"},
    "zones": [
        {"id": "outside", "kind": "public"},
        {"id": "screening", "kind": "screening"},
        {"id": "work", "kind": "sealed_work"},
        {"id": "vault", "kind": "key_part", "classification": "secret"},
    ],
    "doors": [
        {"id": "gate-outer", "a": "outside", "b": "screening"},
        {"id": "gate-inner", "a": "screening", "b": "work"},
        {"id": "vault-door", "a": "work", "b": "vault"},
    ],
    "entrance": {"outer": "gate-outer", "inner": "gate-inner"},
    "cameras": [{"id": "cam-1", "zone": "vault"}],
}


def load(change: Any = None, **top: Any) -> Site:
    raw = copy.deepcopy(MINIMAL)
    raw.update(top)
    if change is not None:
        change(raw)
    return parse_site(yaml.safe_dump(raw))


def errors(change: Any = None, **top: Any) -> list[str]:
    with pytest.raises(SiteError) as info:
        load(change, **top)
    return info.value.errors


def test_reference_site_loads_with_its_sealed_boundary(site_path: Path) -> None:
    site = load_site(site_path)
    assert site.id == "jb-print"
    assert {d.id for d in site.boundary_doors} == {"gate-inner", "fire-exit-north", "supply-hatch"}
    assert site.perimeter_panels() == ("panel-main",)
    assert site.monitoring_zones == ("monitoring-room",)
    assert site.device_kind["belt-north-fence"] == "alarm_input"
    assert site.policies.badge_denied_burst.count == 3
    assert site.seals[0].start.utcoffset() is not None  # type: ignore[union-attr]


def test_agency_loads_without_an_entrance_and_warns_about_bare_key_parts(agency_path: Path) -> None:
    site = load_site(agency_path)
    assert site.entrance is None
    assert site.policies.door_held_open_s == 20
    assert site.policies.video_retention_days == 90  # the default
    assert any("meeting-room" in w and "no camera" in w for w in site.warnings)


def test_only_site_and_zones_are_required() -> None:
    site = parse_site(yaml.safe_dump({"site": MINIMAL["site"], "zones": MINIMAL["zones"]}))
    assert site.entrance is None and site.doors == {}
    assert parse_site("site: {id: x, name: X}\nzones: [{id: z, kind: public}]\n").timezone == "UTC"
    assert "zones: required" in errors(lambda r: r.pop("zones"))


def test_unknown_keys_are_errors_at_every_level() -> None:
    found = errors(lambda r: r["doors"][1].update(colour="red"), camras=[])
    assert "doors[1].colour: unknown key" in found
    assert "camras: unknown key (did you mean 'cameras'?)" in found


def test_unknown_zone_reference_names_the_path_and_suggests_the_near_miss() -> None:
    found = errors(lambda r: r["doors"][2].update(b="vaul"))
    assert found == ["doors[2].b: unknown zone 'vaul' (did you mean 'vault'?)"]


def test_ids_are_unique_across_the_whole_file() -> None:
    found = errors(lambda r: r["cameras"].append({"id": "gate-inner", "zone": "work"}))
    assert found == ["cameras[1].id: duplicate id 'gate-inner' (first defined at doors[1].id)"]


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ("zones", "kind", "sealed_workk"),
        ("doors", "kind", "window"),
    ],
)
def test_bad_enums_are_refused(path: str, key: str, value: str) -> None:
    found = errors(lambda r: r[path][0].update({key: value}))
    assert len(found) == 1 and f"{path}[0].{key}: '{value}' is not one of" in found[0]


def test_bad_role_is_refused_with_a_suggestion() -> None:
    found = errors(people=[{"badge": "B1", "name": "A", "role": "gaurd", "zones": ["work"]}])
    assert found == [
        "people[0].role: 'gaurd' is not one of sealed_staff, supervisor, "
        "secrecy_officer, operator, guard, maintenance (did you mean 'guard'?)"
    ]


def test_naive_times_are_refused() -> None:
    seal = {
        "id": "s1",
        "name": "S",
        "classification": "secret",
        "start": "2027-05-20T08:00:00",
        "end": "2027-05-21T08:00:00+08:00",
    }
    found = errors(seals=[seal])
    assert len(found) == 1 and found[0].startswith("seals[0].start: time ")
    assert "has no offset" in found[0]


def test_key_part_needs_a_classification_and_only_key_parts_carry_one() -> None:
    def change(r: dict[str, Any]) -> None:
        del r["zones"][3]["classification"]
        r["zones"][2]["classification"] = "secret"

    found = errors(change)
    assert (
        "zones[3]: key part 'vault' needs a classification (top_secret, secret, "
        "confidential)" in found
    )
    assert "zones[2].classification: only key_part zones carry a classification" in found


def test_video_retention_below_90_days_is_refused() -> None:
    assert load(policies={"video_retention_days": 90}).policies.video_retention_days == 90
    (found,) = errors(policies={"video_retention_days": 89})
    assert found.startswith("policies.video_retention_days: 89 is below the 90 days")


def test_entrance_inner_must_be_a_boundary_door() -> None:
    found = errors(lambda r: r["entrance"].update(inner="gate-outer", outer="gate-outer"))
    assert any(
        f.startswith("entrance.inner: door 'gate-outer' is not a boundary door") for f in found
    )


def test_entrance_outer_must_lead_into_screening_from_outside() -> None:
    found = errors(lambda r: r["entrance"].update(outer="vault-door"))
    assert "entrance.outer: door 'vault-door' must lead into the screening zone" in found


def test_every_error_is_reported_at_once() -> None:
    def change(r: dict[str, Any]) -> None:
        r["doors"][2]["b"] = "vaul"
        r["zones"][3]["kind"] = "key_prt"
        r["cameras"][0]["zone"] = "nowhere"

    found = errors(change, policies={"door_held_open_s": -1})
    assert [f.split(":")[0] for f in found] == [
        "zones[3].kind",
        "doors[2].b",
        "cameras[0].zone",
        "policies.door_held_open_s",
    ]


def test_not_a_mapping_at_the_top_is_one_clear_error() -> None:
    with pytest.raises(SiteError) as info:
        parse_site("- just\n- a list\n")
    assert info.value.errors == ["(file): expected a mapping at the top, got list"]
