"""Pure logic of the migration runner: file names, ordering, checksums and history comparison."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bigbrotr.errors import MigrationError
from bigbrotr.migrate import (
    DEFAULT_DIRECTORY,
    AppliedMigration,
    MigrationFile,
    MigrationState,
    MigrationStatus,
    checksum_of,
    compare,
    error_line,
    parse_filename,
    parse_migration_files,
    plan,
    read_migration_files,
)

APPLIED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _files(*names: str) -> list[MigrationFile]:
    return parse_migration_files({name: f"-- {name}\n".encode() for name in names})


def _applied(file: MigrationFile, *, checksum: str | None = None) -> AppliedMigration:
    return AppliedMigration(file.version, file.name, checksum or file.checksum, APPLIED_AT)


@pytest.mark.parametrize(
    ("filename", "version", "name"),
    [
        ("0001_relays.sql", 1, "relays"),
        ("0042_add_relay_index.sql", 42, "add_relay_index"),
        ("9999_v2.sql", 9999, "v2"),
    ],
)
def test_parse_filename_reads_version_and_name(filename: str, version: int, name: str) -> None:
    assert parse_filename(filename) == (version, name)


@pytest.mark.parametrize(
    "filename",
    [
        "1_relays.sql",
        "00001_relays.sql",
        "0001-relays.sql",
        "0001_Relays.sql",
        "0001_.sql",
        "0001_two__underscores.sql",
        "0001_trailing_.sql",
        "0001_relays.SQL",
        "0001_relays.sql.sql",
        "relays.sql",
    ],
)
def test_parse_filename_refuses_malformed_names(filename: str) -> None:
    with pytest.raises(MigrationError, match="badly named") as info:
        parse_filename(filename)
    assert repr(filename) in str(info.value)


def test_parse_filename_refuses_version_zero() -> None:
    with pytest.raises(MigrationError, match="start at 0001"):
        parse_filename("0000_init.sql")


def test_files_are_ordered_by_version_and_checksummed_from_their_bytes() -> None:
    contents = {
        "0010_ten.sql": b"SELECT 10;\n",
        "0002_two.sql": b"SELECT 2;\r\n",
        "0001_one.sql": "SELECT 'é';".encode(),
    }
    files = parse_migration_files(contents)
    assert [(f.version, f.name) for f in files] == [(1, "one"), (2, "two"), (10, "ten")]
    assert [f.filename for f in files] == ["0001_one.sql", "0002_two.sql", "0010_ten.sql"]
    for file in files:
        expected = hashlib.sha256(contents[file.filename]).hexdigest()
        assert file.checksum == expected
        assert file.sql == contents[file.filename].decode()


def test_checksum_notices_whitespace_edits() -> None:
    assert checksum_of(b"SELECT 1;\n") != checksum_of(b"SELECT 1; \n")


def test_names_not_ending_in_sql_are_skipped() -> None:
    files = parse_migration_files(
        {"README.md": b"# notes", "0001_one.sql": b"SELECT 1;", "0002_two.sql.orig": b"x"}
    )
    assert [f.filename for f in files] == ["0001_one.sql"]


def test_upper_case_sql_suffix_is_refused_rather_than_skipped() -> None:
    with pytest.raises(MigrationError, match=r"'0002_two\.SQL' is badly named"):
        parse_migration_files({"0001_one.sql": b"", "0002_two.SQL": b""})


def test_duplicate_versions_are_refused_naming_both_files() -> None:
    with pytest.raises(MigrationError, match="share version 0003") as info:
        parse_migration_files({"0003_a.sql": b"", "0003_b.sql": b"", "0001_x.sql": b""})
    assert "0003_a.sql" in str(info.value)
    assert "0003_b.sql" in str(info.value)


def test_non_utf8_file_is_refused_naming_the_file() -> None:
    with pytest.raises(MigrationError, match=r"0001_one\.sql is not valid UTF-8"):
        parse_migration_files({"0001_one.sql": b"SELECT '\xff';"})


def test_compare_reports_every_state_in_version_order() -> None:
    one, two, three, four = _files("0001_a.sql", "0002_b.sql", "0003_c.sql", "0004_d.sql")
    renamed = parse_migration_files({"0004_e.sql": b"-- 0004_d.sql\n"})[0]
    gone = AppliedMigration(5, "gone", "0" * 64, APPLIED_AT)
    history = [_applied(one), _applied(two, checksum="f" * 64), _applied(four), gone]

    statuses = compare([one, two, three, renamed], history)

    assert statuses == [
        MigrationStatus(1, "a", MigrationState.APPLIED, APPLIED_AT),
        MigrationStatus(2, "b", MigrationState.MODIFIED, APPLIED_AT),
        MigrationStatus(3, "c", MigrationState.PENDING, None),
        MigrationStatus(4, "e", MigrationState.MODIFIED, APPLIED_AT),
        MigrationStatus(5, "gone", MigrationState.MISSING, APPLIED_AT),
    ]


def test_plan_returns_pending_files_in_order() -> None:
    files = _files("0003_c.sql", "0001_a.sql", "0002_b.sql")
    assert plan(files, []) == files
    assert plan(files, [_applied(files[0])]) == files[1:]
    assert plan(files, [_applied(f) for f in files]) == []


def test_plan_refuses_an_edited_applied_file() -> None:
    one, two = _files("0001_a.sql", "0002_b.sql")
    with pytest.raises(MigrationError, match=r"0001_a\.sql changed after it was applied") as info:
        plan([one, two], [_applied(one, checksum="0" * 64)])
    assert "new migration" in str(info.value)


def test_plan_refuses_a_renamed_applied_file() -> None:
    (one,) = _files("0001_a.sql")
    history = [AppliedMigration(1, "old", one.checksum, APPLIED_AT)]
    with pytest.raises(MigrationError, match=r"applied as 0001_old\.sql .* named 0001_a\.sql"):
        plan([one], history)


def test_plan_refuses_when_an_applied_file_is_missing() -> None:
    (two,) = _files("0002_b.sql")
    history = [AppliedMigration(1, "a", "0" * 64, APPLIED_AT), _applied(two)]
    with pytest.raises(MigrationError, match=r"0001_a\.sql was applied .* file is gone"):
        plan([two], history)


def test_plan_refuses_a_pending_file_older_than_an_applied_one() -> None:
    one, two, three = _files("0001_a.sql", "0002_b.sql", "0003_c.sql")
    with pytest.raises(MigrationError, match=r"0002_b\.sql is pending .* 0003_c\.sql"):
        plan([one, two, three], [_applied(one), _applied(three)])


@pytest.mark.parametrize(
    ("position", "line"),
    [("1", 1), ("10", 1), ("11", 2), ("17", 2), ("18", 3), (None, None), ("", None)],
)
def test_error_line_counts_lines_before_the_position(
    position: str | None, line: int | None
) -> None:
    sql = "SELECT 1;\nSELECT\nnosuch;"
    assert error_line(sql, position) == line


def test_read_migration_files_refuses_missing_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        read_migration_files(tmp_path / "nowhere")
    (tmp_path / "README.md").write_text("no migrations here")
    with pytest.raises(MigrationError, match="no migration files"):
        read_migration_files(tmp_path)


def test_shipped_migrations_parse_with_consecutive_versions() -> None:
    files = read_migration_files(DEFAULT_DIRECTORY)
    assert [f.version for f in files] == list(range(1, len(files) + 1))
    assert all(f.sql.strip() for f in files)
