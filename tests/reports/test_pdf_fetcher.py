"""WeasyPrint reads data: URLs and the project's static files only: no local file, no network."""

from __future__ import annotations

import http.server
import subprocess
import threading

import pytest
from weasyprint import HTML

from reports.renderers.pdf_fetcher import StaticOnlyFetcher


@pytest.fixture
def web():
    """An HTTP server on loopback that records every path asked of it, stopped after the test."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            asked.append(self.path)
            body = b"body::after { content: 'FROM-THE-NETWORK' }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def _pdf_text(html: str, tmp_path, base_url: str) -> str:
    pdf = tmp_path / "out.pdf"
    HTML(string=html, base_url=base_url, url_fetcher=StaticOnlyFetcher()).write_pdf(pdf)
    return subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def test_a_local_file_and_an_http_url_are_not_fetched_a_static_file_and_data_are(tmp_path, settings, web):
    url, asked = web
    static = tmp_path / "static"
    static.mkdir()
    (static / "ours.css").write_text("h1::after { content: ' FROM-STATIC' }")
    settings.STATICFILES_DIRS = [static]
    settings.STATIC_ROOT = tmp_path / "collected"
    secret = tmp_path / "secret.css"
    secret.write_text("p::after { content: 'LOCAL-SECRET' }")

    text = _pdf_text(f"""<html><head>
        <link rel="stylesheet" href="{secret.as_uri()}">
        <link rel="stylesheet" href="{url}/evil.css">
        <link rel="stylesheet" href="static/ours.css">
        <link rel="stylesheet" href="static/../secret.css">
        <style>h2::after {{ content: url("data:text/plain,x") }}</style>
        </head><body><h1>Report</h1><p>text</p></body></html>""", tmp_path, base_url=tmp_path.as_uri() + "/")

    assert "FROM-STATIC" in text
    assert "LOCAL-SECRET" not in text and "FROM-THE-NETWORK" not in text
    assert asked == []


@pytest.mark.parametrize("refused", ["file:///etc/passwd", "http://127.0.0.1:9/x.css", "https://127.0.0.1/x.png",
                                     "ftp://127.0.0.1/x", "file://otherhost/static/x.css"])
def test_the_fetcher_refuses_anything_but_data_and_static_files(refused):
    with pytest.raises(ValueError, match="refused"):
        StaticOnlyFetcher().fetch(refused)


def test_the_fetcher_reads_a_data_url():
    response = StaticOnlyFetcher().fetch("data:text/plain,hello")
    assert response.read() == b"hello"
