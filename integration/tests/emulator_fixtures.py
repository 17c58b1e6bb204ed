"""Session-scoped pytest fixtures for the cloud emulators in emulators.py: each starts once, on
first use, with its own directory under pytest's tmp dir, and is stopped at the session's end
(also when tests failed). Use them from a conftest (`from emulator_fixtures import *`, or
`pytest_plugins = ["emulator_fixtures"]` in the top conftest) or a test module
(`pytest_plugins = ["emulator_fixtures"]`). A test that stops or restarts one for an outage must
start it again before it ends (same port; see each class for what survives a restart)."""

import pytest

from emulators import Azurite, FakeGcs, GcpStorageEmulator, Moto

__all__ = ["moto", "azurite", "fake_gcs", "gcp_emulator"]


def _serve(emulator):
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """Moto S3 server (in memory: a restart wipes it)."""
    yield from _serve(Moto(tmp_path_factory.mktemp("moto")))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Azurite blob service, persistent on disk (dev account devstoreaccount1)."""
    yield from _serve(Azurite(tmp_path_factory.mktemp("azurite")))


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory):
    """fake-gcs-server, filesystem backend (persistent across restarts)."""
    yield from _serve(FakeGcs(tmp_path_factory.mktemp("fake-gcs")))


@pytest.fixture(scope="session")
def gcp_emulator(tmp_path_factory):
    """gcp-storage-emulator, on disk (persistent across restarts)."""
    yield from _serve(GcpStorageEmulator(tmp_path_factory.mktemp("gcp-emulator")))
