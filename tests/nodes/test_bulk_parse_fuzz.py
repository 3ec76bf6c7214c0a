"""The paste and CSV parsers take anything a person can upload: a row list or a ValidationError, never a crash."""

import csv
import io

from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.services import NodeRow, parse_node_csv, parse_node_paste

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
LINEISH = st.text(alphabet=st.sampled_from(list('127.0.1:;,"#\n\r\t ab-_\x00é')), max_size=200)


def _well_formed(rows):
    return isinstance(rows, list) and rows and all(isinstance(r, NodeRow) and r.address and r.line >= 1 for r in rows)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, LINEISH))
def test_the_paste_parser_returns_rows_or_refuses_clearly(text):
    try:
        rows = parse_node_paste(text)
    except ValidationError as exc:
        assert exc.messages and exc.messages[0]
    else:
        assert _well_formed(rows)
        assert all("\n" not in r.address and " " not in r.address for r in rows)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), LINEISH.map(lambda s: s.encode()), ANY_TEXT.map(lambda s: s.encode())))
def test_the_csv_parser_returns_rows_or_refuses_clearly(data):
    try:
        rows = parse_node_csv(data)
    except ValidationError as exc:
        assert exc.messages and exc.messages[0]
    else:
        assert _well_formed(rows)


ADDRESS = st.ip_addresses(v=4).map(str)
NAME = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=30).map(str.strip)
TAG = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ADDRESS, NAME, st.lists(TAG, max_size=4, unique=True)), min_size=1, max_size=20),
       st.booleans())
def test_a_csv_written_by_a_csv_writer_reads_back_row_for_row(records, header):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(["address", "name", "tags"])
    for address, name, tags in records:
        writer.writerow([address, name, ";".join(tags)])
    rows = parse_node_csv(buffer.getvalue().encode())
    assert [(r.address, r.name, list(r.tags)) for r in rows] == [(a, n.strip(), t) for a, n, t in records]
