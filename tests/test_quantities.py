from __future__ import annotations

import pytest

from slmops_bp import quantities as q


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 * 1024**2),
        ("8GiB", 8 * 1024**3),
        ("2.4GB", 2_400_000_000),
        ("1KB", 1000),
        ("3 MiB", 3 * 1024**2),
        ("17B", 17),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert q.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["8", 8, 8.5, "8gb", "8 G", "GiB", "-1GiB", True, None, "1e3MB"])
def test_bad_sizes_say_why(bad: object) -> None:
    with pytest.raises(q.QuantityError) as info:
        q.parse_size(bad)
    assert str(info.value)


def test_bare_number_size_suggests_a_unit() -> None:
    with pytest.raises(q.QuantityError, match="no unit"):
        q.parse_size(8)


def test_case_hint() -> None:
    with pytest.raises(q.QuantityError, match="case-sensitive"):
        q.parse_size("8gib")


@pytest.mark.parametrize("n", [1, 1000, 1024, 2_400_000_000, 8 * 1024**3, 123_456_789])
def test_format_size_round_trips(n: int) -> None:
    assert q.parse_size(q.format_size(n)) == n


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("7d", 604800), ("1h30m", 5400), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert q.parse_duration(text) == seconds
    assert q.parse_duration(q.format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["90", 90, "5 minutes", "", "s"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(q.QuantityError):
        q.parse_duration(bad)


def test_percentages_and_counts() -> None:
    assert q.parse_count_or_percent("10%") == q.Percent(10.0)
    assert q.parse_count_or_percent(3) == 3
    assert str(q.Percent(12.5)) == "12.5%"
    assert q.Percent(50).of(7) == 3.5
    for bad in ["101%", "10", True, 1.5, "ten%"]:
        with pytest.raises(q.QuantityError):
            q.parse_count_or_percent(bad)
