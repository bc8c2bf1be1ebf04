"""``wanglai sandbox bank`` and ``wanglai operator-sandbox``: run a partner SANDBOX (not a real
bank or operator) as its own process, for development and tests. Switch its failure mode later
with ``POST /sandbox/mode {"mode": ..., "delay_ms": ...}``."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal, InvalidOperation

import typer

from wanglai.sandbox.partner import MODES, SandboxServer

sandbox_app = typer.Typer(no_args_is_help=True, help="Partner SANDBOXES: a bank gateway.")

HOST = typer.Option("127.0.0.1", help="Address to listen on")
MODE = typer.Option("ok", help=f"Failure mode: {', '.join(MODES)}")
DELAY = typer.Option(0, "--delay-ms", help="Delay before the outcome (or the held answer)")


def _serve(sandbox: SandboxServer, host: str, port: int) -> None:
    from wanglai.sandbox.partner import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(sandbox, host, port))


@sandbox_app.command("bank")
def bank_command(
    port: int = typer.Option(8091, help="Port"),
    secret: str = typer.Option("sandbox-bank-secret", help="Shared HMAC secret"),
    host: str = HOST,
    mode: str = MODE,
    delay_ms: int = DELAY,
) -> None:
    """Run the bank gateway SANDBOX (card charges and payouts)."""
    from wanglai.sandbox.bank import bank

    if mode not in MODES:
        raise typer.BadParameter(f"--mode is one of {', '.join(MODES)}")
    _serve(bank(secret, mode=mode, delay_ms=delay_ms), host, port)


def operator_sandbox(
    port: int = typer.Option(8092, help="Port"),
    host: str = HOST,
    client_id: str = typer.Option("wanglai", help="The OAuth2 client id it accepts"),
    client_secret: str = typer.Option(
        "sandbox-operator-secret", help="The OAuth2 client secret it accepts"
    ),
    mode: str = typer.Option(
        "ok",
        help="Failure mode: ok, sync, deny, refuse, error, timeout, no_callback,"
        " duplicate_callback",
    ),
    delay_ms: int = DELAY,
    monthly_cap: str = typer.Option(
        "500.00", help="Most charged to one number a month (yuan), e.g. 300.00"
    ),
    token_ttl_s: int = typer.Option(3600, help="Lifetime of the access tokens it issues"),
) -> None:
    """Run the operator's carrier-billing SANDBOX (OAuth2 token endpoint and a CAMARA-style
    payments API). Not the operator: nothing is charged to any phone bill."""
    from wanglai.sandbox.operator import MODES as OPERATOR_MODES
    from wanglai.sandbox.operator import OperatorSandbox

    if mode not in OPERATOR_MODES:
        raise typer.BadParameter(f"--mode is one of {', '.join(OPERATOR_MODES)}")
    try:
        cap = Decimal(monthly_cap)
    except InvalidOperation:
        raise typer.BadParameter("--monthly-cap is an amount, e.g. 300.00") from None
    if not cap.is_finite() or cap < 0:
        raise typer.BadParameter("--monthly-cap is an amount, e.g. 300.00")
    if not 1 <= token_ttl_s <= 86_400:
        raise typer.BadParameter("--token-ttl-s is 1 to 86400")
    sandbox = OperatorSandbox(
        client_id,
        client_secret,
        mode=mode,
        delay_ms=delay_ms,
        monthly_cap=cap,
        token_ttl_s=token_ttl_s,
    )
    _serve(sandbox, host, port)
