"""A tiny SMART Backend Services client for trying the hub from a shell (``wraparound demo`` prints how).

``python -m service.demo_client token --client-id ID --key demo-keys/ID.jwk.json`` prints an access token:
it reads the token endpoint from the SMART configuration
(https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known), signs an ES384 client
assertion (https://hl7.org/fhir/smart-app-launch/backend-services.html#authenticating-to-the-token-endpoint)
and posts it. ``pick`` and ``set`` read and edit the JSON that curl returns, so the walkthrough needs
nothing but curl and this module.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from joserfc.jwk import ECKey

from auth.client import ASSERTION_TYPE, sign_client_assertion

DEFAULT_HUB = "http://127.0.0.1:8000"

app = typer.Typer(help="Demo SMART client: get tokens, read and edit FHIR JSON.", no_args_is_help=True)


class DemoClientError(Exception):
    """Something the user can fix; the message says what."""


def load_key(path: Path) -> ECKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = ECKey.import_key(data)
    except OSError as exc:
        raise DemoClientError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise DemoClientError(f"{path} does not hold an EC private JWK") from exc
    if not key.is_private:
        raise DemoClientError(f"{path} holds a public key; the private JWK is needed to sign")
    return key


def token_endpoint(http: httpx.Client, hub: str) -> str:
    response = http.get(f"{hub.rstrip('/')}/fhir/.well-known/smart-configuration")
    if response.status_code != 200:
        raise DemoClientError(
            f"no SMART configuration at {hub} (HTTP {response.status_code}); is the hub running?"
        )
    return str(response.json()["token_endpoint"])


def request_token(
    hub: str, client_id: str, key: ECKey, scope: str = "system/*.cruds", http: httpx.Client | None = None
) -> str:
    """An access token for ``client_id`` (the granted scope is what the registration allows of ``scope``)."""
    owned = http is None
    http = http or httpx.Client(timeout=30)
    try:
        url = token_endpoint(http, hub)
        response = http.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": sign_client_assertion(client_id, url, key),
                "scope": scope,
            },
        )
    except httpx.HTTPError as exc:
        raise DemoClientError(f"cannot reach {hub}: {exc}") from exc
    finally:
        if owned:
            http.close()
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        reason = body.get("error_description") or body.get("error") or response.text[:200]
        raise DemoClientError(f"token request refused (HTTP {response.status_code}): {reason}")
    return str(body["access_token"])


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _stdin_json() -> Any:
    try:
        value = json.load(sys.stdin)
    except ValueError:
        _fail("standard input is not JSON (did the request fail? run the curl command alone to see)")
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
        details = "; ".join(str(i.get("diagnostics", i.get("code", ""))) for i in value.get("issue") or [])
        _fail(f"the hub answered with an OperationOutcome: {details}")
    return value


def pick_path(value: Any, path: str) -> Any:
    """Follow a dotted path (``entry.0.resource.id``); list positions are numbers."""
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise DemoClientError(f"{path!r} is not in the JSON (stopped at {part!r})")
    return value


def set_path(value: Any, path: str, new: Any) -> None:
    *parents, last = path.split(".")
    target = pick_path(value, ".".join(parents)) if parents else value
    if not isinstance(target, dict):
        raise DemoClientError(f"cannot set {path!r}: its parent is not an object")
    target[last] = new


@app.command("token")
def token(
    client_id: Annotated[str, typer.Option("--client-id", help="The registered client id.")],
    key: Annotated[Path, typer.Option("--key", help="File with the client's private JWK.")],
    hub: Annotated[str, typer.Option("--hub", help="The hub's base URL.")] = DEFAULT_HUB,
    scope: Annotated[str, typer.Option("--scope", help="Scopes to ask for.")] = "system/*.cruds",
) -> None:
    """Print an access token for the client."""
    try:
        typer.echo(request_token(hub, client_id, load_key(key), scope))
    except DemoClientError as exc:
        _fail(str(exc))


@app.command("pick")
def pick(path: Annotated[str, typer.Argument(help="Dotted path, e.g. id or entry.0.resource.id")]) -> None:
    """Print one value of the JSON read from standard input."""
    try:
        value = pick_path(_stdin_json(), path)
    except DemoClientError as exc:
        _fail(str(exc))
    typer.echo(value if isinstance(value, str | int | float) else json.dumps(value))


@app.command("set")
def set_(assignments: Annotated[list[str], typer.Argument(help="PATH=VALUE, e.g. status=accepted")]) -> None:
    """Print the JSON from standard input with values replaced (VALUE is JSON, or else a string)."""
    value = _stdin_json()
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep:
            _fail(f"{assignment!r} is not PATH=VALUE")
        try:
            new: Any = json.loads(raw)
        except ValueError:
            new = raw
        try:
            set_path(value, path, new)
        except DemoClientError as exc:
            _fail(str(exc))
    typer.echo(json.dumps(value))


if __name__ == "__main__":
    app()
