from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"


@pytest.fixture(scope="session")
def site_path() -> Path:
    """The reference exam printing works; it loads unchanged (docs/interfaces.md §1)."""
    return EXAMPLES / "site.yaml"


@pytest.fixture(scope="session")
def agency_path() -> Path:
    return EXAMPLES / "agency.yaml"


def _broker_dir() -> Path:
    """A directory mosquitto can write: started as root it drops to its own user, which must
    be able to write its persistence file (else a restart forgets every session), and
    pytest's tmp_path is private to root."""
    workdir = Path(tempfile.mkdtemp(prefix="sealwatch-broker-"))
    workdir.chmod(0o777)
    return workdir


@pytest.fixture(scope="session")
def mosquitto_session() -> Iterator[Mosquitto]:
    """One real Mosquitto for the whole test session; tests use their own topics/site ids."""
    workdir = _broker_dir()
    broker = Mosquitto(workdir).start()
    yield broker
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A private Mosquitto for tests that restart or kill the broker."""
    workdir = _broker_dir()
    broker = Mosquitto(workdir).start()
    yield broker
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)
