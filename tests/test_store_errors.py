"""SqliteStore reports file-system trouble as one precise ``StoreError``, on real files.

Permission problems are made for real. As a normal user ``chmod`` does it; as root (where
``chmod`` stops nothing) the file or directory is made immutable with ``chattr +i``, and a
read-only file system is a read-only bind mount. A full disk is a tiny tmpfs. Each test skips,
saying why, when this machine cannot produce its situation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lash_kernel.errors import (
    CorruptStoreError,
    SchemaVersionError,
    StoreError,
    StoreFullError,
    StorePermissionError,
)
from lash_kernel.messages import Message, TextPart
from lash_kernel.outcomes import Finished
from lash_kernel.store.base import Node, PendingInput, TurnCommit
from lash_kernel.store.sqlite import SqliteStore
from lash_kernel.usage import UsageLedger

T0 = 1_700_000_000.0
ROOT = os.geteuid() == 0


def _turn(session_id: str, turn_id: str, expected: int, parent: str | None, text: str = "hello") -> TurnCommit:
    node = Node(
        node_id=f"{turn_id}-n0",
        parent_id=parent,
        frame_id="f0",
        turn_id=turn_id,
        kind="message",
        payload=Message(role="user", parts=(TextPart(text=text),)),
        created_at=T0,
    )
    return TurnCommit(
        session_id=session_id,
        turn_id=turn_id,
        expected_head_revision=expected,
        nodes=(node,),
        usage=UsageLedger(),
        outcome=Finished(text="ok"),
        committed_at=T0,
    )


def _make_db(path: Path) -> None:
    """A lash database with one session and one committed turn, closed cleanly (no -wal/-shm)."""
    with SqliteStore(path) as store:
        store.open_session("s1", mode="standard", frame_id="f0", now=T0)
        store.commit_turn(_turn("s1", "t1", 0, None))


def _run(*argv: str) -> bool:
    return shutil.which(argv[0]) is not None and subprocess.run(argv, capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a directory) really unwritable for this process, then restore it."""
    if not ROOT:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if not _run("chattr", "+i", str(path)):
        pytest.skip("running as root, where chmod stops nothing, and chattr +i does not work here")
    try:
        assert not os.access(path, os.W_OK)
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def mounted(target: Path, *mount_args: str) -> Iterator[None]:
    """``mount <mount_args> <target>`` (root only), unmounted afterwards."""
    target.mkdir(exist_ok=True)
    if not ROOT or not _run("mount", *mount_args, str(target)):
        pytest.skip("needs root and mount(8) to build a read-only or tiny file system")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


def _assert_permission_error(exc: BaseException, db: Path, culprit: str) -> None:
    message = str(exc)
    assert isinstance(exc, StorePermissionError) and isinstance(exc, PermissionError)
    assert message.startswith(f"{db}:"), message
    assert "permission denied" in message and culprit in message, message
    assert "corrupt" not in message and "not a SQLite database" not in message


# -- permission --------------------------------------------------------------------------------


def test_new_database_in_a_read_only_directory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "lash.db"
    with read_only(folder), pytest.raises(StoreError) as info:
        SqliteStore(db)
    _assert_permission_error(info.value, db, f"the directory {folder} is not writable")
    assert not db.exists()


def test_existing_database_in_a_read_only_directory_is_not_called_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "lash.db"
    _make_db(db)
    before = db.read_bytes()
    with read_only(folder), pytest.raises(StoreError) as info:
        SqliteStore(db)
    assert not isinstance(info.value, CorruptStoreError)
    _assert_permission_error(info.value, db, f"the directory {folder} is not writable")
    assert db.read_bytes() == before
    with SqliteStore(db) as store:  # writable again: the file was fine all along
        assert store.get_session("s1").head_revision == 1


def test_read_only_file_in_a_writable_directory(tmp_path: Path) -> None:
    db = tmp_path / "lash.db"
    _make_db(db)
    with read_only(db):
        with SqliteStore(db) as store:
            assert store.get_session("s1").head_revision == 1  # reading works
            assert [n.node_id for n in store.load_active_path("s1")] == ["t1-n0"]
            writes = {
                "open_session": lambda: store.open_session("s2", mode="standard", frame_id="f0", now=T0),
                "record_input": lambda: store.record_input(
                    PendingInput(session_id="s1", turn_id="t2", message=Message.user("hi"), created_at=T0)
                ),
                "commit_turn": lambda: store.commit_turn(_turn("s1", "t2", 1, "t1-n0")),
            }
            for operation, write in writes.items():
                with pytest.raises(StoreError) as info:
                    write()
                _assert_permission_error(info.value, db, "the database file is not writable")
                assert operation in str(info.value)
    with SqliteStore(db) as store:  # nothing was written
        assert store.get_session("s1").head_revision == 1
        assert [s.session_id for s in store.list_sessions()] == ["s1"]
        assert store.pending_inputs("s1") == []


def test_read_only_file_system(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    _make_db(source / "lash.db")
    view = tmp_path / "view"
    with mounted(view, "--bind", str(source)):
        if not _run("mount", "-o", "remount,ro,bind", str(view)):
            pytest.skip("cannot remount the bind mount read-only")
        assert not os.access(view, os.W_OK)
        for name in ("lash.db", "new.db"):  # an existing database, and a new one
            with pytest.raises(StoreError) as info:
                SqliteStore(view / name)
            _assert_permission_error(info.value, view / name, "not writable")


# -- disk full ---------------------------------------------------------------------------------


def test_disk_full(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with mounted(disk, "-t", "tmpfs", "-o", "size=256k", "tmpfs"):
        db = disk / "lash.db"
        store = SqliteStore(db)
        try:
            store.open_session("s1", mode="standard", frame_id="f0", now=T0)
            parent, committed = None, 0
            big = "x" * 20_000
            with pytest.raises(StoreError) as info:
                for revision in range(100):
                    result = store.commit_turn(_turn("s1", f"t{revision}", revision, parent, big))
                    parent, committed = result.leaf_id, committed + 1
            exc = info.value
            assert isinstance(exc, StoreFullError), repr(exc)
            assert str(exc).startswith(f"{db}: commit_turn failed: disk full"), str(exc)
            assert 0 < committed < 100
            # the failed commit wrote nothing; the store keeps working for reads
            assert store.get_session("s1").head_revision == committed
            assert len(store.load_active_path("s1")) == committed
        finally:
            store.close()
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(StoreFullError, match="disk full"):
            SqliteStore(disk / f"{uuid.uuid4().hex}.db")
        filler.unlink()
        with SqliteStore(db) as store:  # space again: the database is intact
            assert store.get_session("s1").head_revision == committed


# -- the other errors stay what they were -------------------------------------------------------


def test_corrupt_and_newer_files_keep_their_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database " * 500)
    with pytest.raises(CorruptStoreError, match="not a SQLite database"):
        SqliteStore(garbage)
    newer = tmp_path / "newer.db"
    _make_db(newer)
    import sqlite3

    conn = sqlite3.connect(newer)
    with conn:
        conn.execute("UPDATE lash_meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer lash"):
        SqliteStore(newer)


def test_missing_directory_is_a_plain_store_error(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "lash.db"
    with pytest.raises(StoreError, match="does not exist") as info:
        SqliteStore(db)
    assert type(info.value) is StoreError
    assert str(db) in str(info.value)
