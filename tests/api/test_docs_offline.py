"""Issue 10: /docs and /redoc load nothing from other hosts; WRAPAROUND_DOCS=0 turns them off."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from service.storage.database import Database
from tests.support.clients import FhirClients
from tests.support.live import LiveServer

_EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"src", "href"} and tag in {"script", "link", "img"}:
                self.urls.append(value)


def _assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets(fhir: FhirClients, page: str) -> None:
    http = fhir.anonymous()
    response = http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = _assets(response.text)
    assert any(u.endswith(".js") for u in urls), urls
    origin = urlsplit(fhir.base_url).netloc
    for url in urls:
        absolute = urljoin(f"{fhir.base_url}{page}", url)
        assert urlsplit(absolute).netloc == origin, url
        asset = http.get(absolute)
        assert asset.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        assert _EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url
    # Not even inline script names another host (no CDN, no online validator, no web fonts).
    assert "://" not in response.text


def test_swagger_ui_loads_the_document_it_serves(fhir: FhirClients) -> None:
    http = fhir.anonymous()
    assert "'/openapi.json'" in http.get("/docs").text
    document = http.get("/openapi.json")
    assert document.status_code == 200
    assert "/fhir/ServiceRequest" in document.json()["paths"]


def test_docs_switch_turns_everything_off(database: Database) -> None:
    with LiveServer.start(database, docs=False) as live, httpx.Client(base_url=live.base_url) as http:
        for path in (
            "/docs",
            "/redoc",
            "/openapi.json",
            "/docs/oauth2-redirect",
            "/docs-assets/swagger-ui.css",
        ):
            assert http.get(path).status_code == 404, path
        assert http.get("/fhir/metadata").status_code == 200
