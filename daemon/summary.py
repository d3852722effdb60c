"""A one-screen summary of a site, for `sealwatch check`."""

from __future__ import annotations

from collections import Counter

from policies.site import Site


def site_summary(site: Site) -> str:
    lines = [f"site {site.id}: {site.name} ({site.timezone})"]
    by_kind: dict[str, list[str]] = {}
    for z in site.zones.values():
        label = z.id + (f" [{z.classification}]" if z.classification else "")
        by_kind.setdefault(z.kind, []).append(label)
    lines.append(f"zones ({len(site.zones)}):")
    lines += [f"  {kind:<14} {', '.join(ids)}" for kind, ids in by_kind.items()]
    sealed = [z.id for z in site.zones.values() if z.sealed]
    lines.append(f"sealed area: {', '.join(sealed) or '(none)'}")
    lines.append(
        "boundary doors: "
        + (
            ", ".join(d.id + (" (hatch)" if d.kind == "hatch" else "") for d in site.boundary_doors)
            or "(none)"
        )
    )
    if site.entrance:
        lines.append(f"entrance: outer {site.entrance.outer} -> inner {site.entrance.inner}")
    else:
        lines.append("entrance: none (no single-entrance, interlock or escorted-exit rules)")
    two = [d.id for d in site.doors.values() if d.two_person]
    if two:
        lines.append(f"two-person doors: {', '.join(two)}")
    kinds = Counter(site.device_kind.values())
    lines.append("devices: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    roles = Counter(p.role for p in site.people.values())
    lines.append(
        f"people ({len(site.people)}): " + ", ".join(f"{n} {r}" for r, n in sorted(roles.items()))
    )
    if site.seals:
        lines.append(f"seals ({len(site.seals)}):")
        for s in site.seals:
            lines.append(f"  {s.id} [{s.classification}] {s.start} .. {s.end}  {s.name}")
    else:
        lines.append("seals: none scheduled (start them with seal.start events)")
    for w in site.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
