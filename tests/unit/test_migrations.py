"""The store: migrations old -> new, refusing newer schemas, and files that are not ours."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from bot.core.errors import StoreError
from storage.db import open_database
from storage.migrations import KNOWN, migrations
from tests.conftest import run_cli


def test_fresh_store_gets_every_migration_and_wal(db_path: Path) -> None:
    db = open_database(db_path)
    assert [m.name for m in migrations.applied(db)] == KNOWN
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert {
        "sources",
        "articles",
        "articles_fts",
        "stories",
        "targets",
        "subscriptions",
        "outbox",
        "conversations",
    } <= set(db.table_names())
    db.close()


def test_old_store_is_migrated_and_keeps_its_data(db_path: Path) -> None:
    """A store made by an older release (here: before any migration ran) is brought up to date."""
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE legacy_note (text TEXT)")
    conn.execute("INSERT INTO legacy_note VALUES ('kept')")
    conn.commit()
    conn.close()
    db = open_database(db_path)
    assert db.execute("SELECT text FROM legacy_note").fetchone()[0] == "kept"
    assert [m.name for m in migrations.pending(db)] == []
    db.close()
    # Opening again applies nothing and fails nothing.
    open_database(db_path).close()


def test_newer_schema_is_refused_clearly(db_path: Path) -> None:
    db = open_database(db_path)
    db.execute(
        "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
        "VALUES ('sovereign_watch', '9999_from_the_future', '2030-01-01')"
    )
    db.conn.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        open_database(db_path)


def test_fts_indexes_inserts_and_korean_terms(db_path: Path) -> None:
    from bot.core.textindex import fts_or_query, index_terms

    db = open_database(db_path)
    db.execute(
        "INSERT INTO stories(id, title, url, first_seen, last_seen) "
        "VALUES ('s1', 't', 'u', '2026-01-01', '2026-01-01')"
    )
    title = "정부가 인공지능을 국가 전략으로 추진"
    db.execute(
        "INSERT INTO articles(id, url, source, title, fetched_at, story_id, terms) "
        "VALUES ('a1', 'https://x/1', 'x', ?, '2026-01-01', 's1', ?)",
        [title, index_terms(title)],
    )
    db.conn.commit()
    for word in ("인공지능", "국가", "정부", "전략"):
        hits = db.execute(
            "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?", [fts_or_query([word])]
        ).fetchall()
        assert hits, word
    db.close()


def test_not_a_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    before = path.read_bytes()
    proc = run_cli(["status"], path)
    assert proc.returncode == 2
    assert str(path) in proc.stderr
    assert "not a SQLite database" in proc.stderr
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_store_is_refused(db_path: Path) -> None:
    open_database(db_path).close()
    db_path.chmod(0o444)
    proc = run_cli(["status"], db_path)
    assert proc.returncode == 2
    assert "read-only" in proc.stderr and str(db_path) in proc.stderr


def test_read_only_store_is_refused_in_process(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_database(db_path).close()
    monkeypatch.setattr(
        os, "access", lambda p, mode: not (mode & os.W_OK and str(p) == str(db_path))
    )
    with pytest.raises(StoreError, match="read-only"):
        open_database(db_path)
