"""The air-gapped install (docs/deploy.md): `scripts/wheelhouse` builds a wheelhouse, and a
fresh virtualenv installs sealwatch from it with `pip install --no-index --find-links` — pip
is not allowed to reach any index, so what the wheelhouse lacks fails here as it would on a
server without internet. Building the wheelhouse itself downloads from the package index
(~110 MB, under a minute here); the install does not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("policies", "daemon", "adapters", "simulators")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(*cmd: str | Path, timeout: float = 240, **kw: object) -> str:
    out = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw
    )  # type: ignore[call-overload]
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return str(out.stdout)


def test_a_wheelhouse_installs_sealwatch_offline_into_a_fresh_venv(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    _run(ROOT / "scripts" / "wheelhouse", "--out", house, cwd=ROOT)

    # The listing names every wheel, sealwatch and each runtime dependency, with the exact
    # version where pyproject.toml pins one.
    listed = dict(line.split("==", 1) for line in (house / "requirements.txt").read_text().split())
    listed = {_norm(k): v for k, v in listed.items()}
    assert len(listed) == len(list(house.glob("*.whl")))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert listed["sealwatch"] == project["version"]
    for dep in project["dependencies"]:
        name = _norm(re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0])
        assert name in listed, f"{name} is missing from the wheelhouse"
        if "==" in dep:
            assert listed[name] == dep.split("==", 1)[1].strip(), dep

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    env.pop("PYTHONPATH", None)
    _run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        house,
        "sealwatch",
        env=env,
    )

    # Everything of the source packages is in the installed tree (code, the dashboard's
    # files, the OpenAPI description) …
    site_packages = Path(
        _run(
            venv / "bin" / "python",
            "-c",
            "import daemon, pathlib; print(pathlib.Path(daemon.__file__).parent.parent)",
            env=env,
            cwd=tmp_path,
        ).strip()
    )
    assert site_packages.is_relative_to(venv)
    tracked = _run("git", "ls-files", *PACKAGES, cwd=ROOT).split()
    missing = [f for f in tracked if not (site_packages / f).is_file()]
    assert not missing, f"not in the installed wheel: {missing}"
    # … and the installed command runs, with the heavy dependencies importable.
    out = _run(
        venv / "bin" / "sealwatch",
        "check",
        "--config",
        ROOT / "deploy" / "examples" / "site.yaml",
        env=env,
        cwd=tmp_path,
    )
    assert "jb-print" in out
    _run(
        venv / "bin" / "python",
        "-c",
        "import cv2, numpy, weasyprint, pymodbus, aiomqtt, cryptography, argon2, amqtt",
        env=env,
        cwd=tmp_path,
    )
