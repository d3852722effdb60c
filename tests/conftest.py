from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "deploy" / "examples"


@pytest.fixture(scope="session")
def site_path() -> Path:
    """The reference exam printing works (a copy of ../shared/examples/site.yaml)."""
    return EXAMPLES / "site.yaml"


@pytest.fixture(scope="session")
def agency_path() -> Path:
    return EXAMPLES / "agency.yaml"


@pytest.fixture(scope="session")
def mosquitto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real Mosquitto for the whole test session; tests use their own topics/site ids."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto for tests that restart or kill the broker."""
    broker = Mosquitto(tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    yield broker
    broker.stop()
