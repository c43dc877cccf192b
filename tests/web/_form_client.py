"""A plain HTTP client that uses the web app as a browser without JavaScript would: it keeps cookies,
reads the CSRF token from the page's form and sends the Origin a browser sends."""

from __future__ import annotations

import re
from typing import Any

import httpx

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


class FormClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict[str, str], *, origin: str | None = None) -> httpx.Response:
        return self.http.post(path, data=data, headers={"Origin": origin or self.base_url})

    def sign_in(self, email: str, password: str, code: str) -> httpx.Response:
        page = self.get("/app/login")
        assert page.status_code == 200, page.text
        return self.post(
            "/app/login",
            {"email": email, "password": password, "code": code, "csrf_token": csrf_token(page.text)},
        )

    def act(self, task_id: str, action: str, **fields: str) -> httpx.Response:
        """Post one of a referral page's forms, with the token and version that page carries."""
        page = self.get(f"/app/referrals/{task_id}")
        assert page.status_code == 200, page.text
        version = re.search(r'name="version" value="(\d+)"', page.text)
        data = {"csrf_token": csrf_token(page.text), "version": version.group(1) if version else "", **fields}
        return self.post(f"/app/referrals/{task_id}/{action}", data)
