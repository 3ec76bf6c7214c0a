"""config.entries: a typed list is read one way, whether given as a list or as text."""

from __future__ import annotations

from config.entries import split_entries


def test_text_is_split_at_any_of_the_separators():
    assert split_entries("web, db;cache", separators=",;") == ["web", "db", "cache"]
    assert split_entries("10.0.0.0/24\r\n10.0.1.0/24,10.0.2.0/24", separators=",\n") == [
        "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]


def test_entries_are_trimmed_and_empty_ones_dropped():
    assert split_entries("  a , ,b,  ") == ["a", "b"]


def test_each_entry_is_kept_once_in_the_order_given():
    assert split_entries(["b", "a", " b", "a "]) == ["b", "a"]


def test_a_list_keeps_separators_inside_its_entries():
    assert split_entries(["a;b", 7]) == ["a;b", "7"]


def test_nothing_holds_no_entry():
    assert split_entries(None) == []
    assert split_entries("") == []
