"""The NIP-01 filter to SQL translation, keyset tokens and query-string parsing: pure logic."""

from __future__ import annotations

import pytest

from bigbrotr.api.params import FilterLimits, checked_filter, events_request
from bigbrotr.archive import InvalidCursor, Keyset, events_query
from bigbrotr.nostr import Filter, InvalidFilter

A = "a" * 64
B = "b" * 64
LIMITS = FilterLimits(default_limit=100, max_limit=500, max_values=10)


def test_an_empty_filter_reads_everything_newest_first() -> None:
    query = events_query(Filter(), limit=10)
    assert query is not None
    assert query.sql.endswith("FROM events ORDER BY created_at DESC, id ASC LIMIT $1")
    assert query.args == (10,)


def test_every_condition_is_one_indexed_predicate_with_its_own_argument() -> None:
    flt = Filter(
        ids=[B, A],
        authors=[A],
        kinds=[7, 1],
        tags={"p": [B], "e": [A, B]},
        since=5,
        until=9,
    )
    query = events_query(flt, limit=3, after=Keyset(8, A))
    assert query is not None
    where = query.sql.split(" WHERE ")[1].split(" ORDER BY ")[0]
    assert where.split(" AND ", 6)[:6] == [
        "id = ANY($1::bytea[])",
        "pubkey = ANY($2::bytea[])",
        "kind = ANY($3::integer[])",
        "tagvalues && $4::text[]",
        "tagvalues && $5::text[]",
        "created_at >= $6",
    ]
    assert "created_at <= $8 AND (created_at < $8 OR id > $9::bytea)" in where
    assert query.args == (
        [bytes.fromhex(A), bytes.fromhex(B)],
        [bytes.fromhex(A)],
        [1, 7],
        [f"e:{A}", f"e:{B}"],
        [f"p:{B}"],
        5,
        9,
        8,
        bytes.fromhex(A),
        3,
    )


@pytest.mark.parametrize(
    "flt",
    [
        Filter(ids=[]),
        Filter(authors=[]),
        Filter(kinds=[]),
        Filter(tags={"e": []}),
        Filter(since=9, until=8),
    ],
)
def test_a_filter_that_matches_nothing_skips_the_database(flt: Filter) -> None:
    assert events_query(flt, limit=10) is None


def test_a_zero_limit_skips_the_database() -> None:
    assert events_query(Filter(kinds=[1]), limit=0) is None


def test_keyset_tokens_round_trip_and_refuse_forgeries() -> None:
    keyset = Keyset(1_700_000_000, A)
    assert Keyset.from_token(keyset.token()) == keyset
    for forged in ("", "!!!", Keyset(1, "x" * 64).token(), Keyset(2**63, A).token()):
        with pytest.raises(InvalidCursor):
            Keyset.from_token(forged)


def test_query_strings_take_repeated_and_comma_separated_values() -> None:
    request = events_request(
        [("kinds", "1,7"), ("kinds", "0"), ("authors", A), ("#e", B), ("#e", A), ("limit", "5")],
        LIMITS,
    )
    assert request.filter == Filter(kinds=[0, 1, 7], authors=[A], tags={"e": [A, B]}, limit=5)
    assert request.limit == 5
    assert request.after is None
    assert events_request([], LIMITS).limit == 100
    cursor = Keyset(3, A).token()
    assert events_request([("cursor", cursor)], LIMITS).after == Keyset(3, A)


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([("limit", "501")], "maximum of 500"),
        ([("since", "1e3")], "since must be a non-negative integer"),
        ([("until", "1"), ("until", "2")], "given twice"),
        ([("kind", "1")], "unknown query parameter 'kind'"),
        ([("kinds", ",".join(map(str, range(11))))], "lists 11 values"),
        ([("ids", "ABC")], "64 lowercase hex"),
    ],
)
def test_bad_query_strings_say_what_is_wrong(items: list[tuple[str, str]], says: str) -> None:
    with pytest.raises(InvalidFilter, match=says):
        events_request(items, LIMITS)


def test_the_value_limit_counts_every_list_together() -> None:
    assert checked_filter({"ids": [A] * 5, "#t": [str(n) for n in range(5)]}, LIMITS)
    with pytest.raises(InvalidFilter, match="lists 11 values"):
        checked_filter({"authors": [A, B], "kinds": list(range(9))}, LIMITS)
