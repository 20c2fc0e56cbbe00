"""``exchange token``: act as a registered client and print an access token.

The token URL is, first, ``--url``; else the exchange's address as configured for this run
(``--base-url``/``--port`` or ``EXCHANGE_BASE_URL``/``EXCHANGE_PORT``); else the one in
the client's file (where the exchange was when the key was made; ``exchange demo`` keeps
it current). A refusal names the URL and where it came from.
"""

from typing import Annotated

import httpx
import jwt
import typer

from exchange.cli.client_files import ClientFileError, read_client
from exchange.cli.data_dir import require
from exchange.cli.messages import fail, this_command
from exchange.cli.options import BaseUrlOpt, DataOpt, PortOpt, settings
from exchange.identity.assertion import make_assertion

GRANT = {"grant_type": "client_credentials",
         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


def token(client: Annotated[str, typer.Option(help="Client id.")],
          data: DataOpt = None,
          purpose: Annotated[str, typer.Option(help="Purpose of use.")] = "TREAT",
          scope: Annotated[str, typer.Option(help="SMART scopes.")] = "system/*.rs",
          url: Annotated[str | None, typer.Option(help="Token URL.")] = None,
          port: PortOpt = None, base_url: BaseUrlOpt = None) -> None:
    """Act as a registered client: sign an assertion, get an access token, print it."""
    configured = settings(data, port, base_url)
    require(configured)
    try:
        info = read_client(configured, client)
    except ClientFileError as exc:
        fail(exc.message)
    if url:
        token_url, source = url, "--url"
    elif configured.address_given:
        token_url, source = configured.token_url, "as configured"
    else:
        token_url, source = info.token_url, f"from {info.path}"
    try:
        pem = info.private_key.read_bytes()
    except OSError as exc:
        fail(f"cannot read the private key {info.private_key}: {exc.strerror}")
    try:
        assertion = make_assertion(info.client_id, pem, info.alg, info.kid, token_url)
    except (ValueError, TypeError, jwt.PyJWTError):
        fail(f"{info.private_key} is not a usable {info.alg} private key")
    try:
        response = httpx.post(token_url, data={**GRANT, "client_assertion": assertion,
                                               "scope": scope, "purpose_of_use": purpose},
                              timeout=10)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the exchange at {token_url} ({source}: {type(exc).__name__}); "
             f"is it serving? ({this_command()} serve --data {configured.data_dir})")
    if response.status_code != 200:
        fail(f"refused ({response.status_code}): {_reason(response)}")
    typer.echo(response.json()["access_token"])


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "error" in body:
        return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
    return response.text[:200]
