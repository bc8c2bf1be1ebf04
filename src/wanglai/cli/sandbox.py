"""``wanglai sandbox bank|billing``: run a partner SANDBOX (not a real bank or operator) as its
own process, for development and tests. Switch its failure mode later with
``POST /sandbox/mode {"mode": ..., "delay_ms": ...}``."""

from __future__ import annotations

import asyncio
import logging

import typer

from wanglai.sandbox.partner import MODES

sandbox_app = typer.Typer(no_args_is_help=True, help="Partner SANDBOXES: a bank and a billing.")

HOST = typer.Option("127.0.0.1", help="Address to listen on")
MODE = typer.Option("ok", help=f"Failure mode: {', '.join(MODES)}")
DELAY = typer.Option(0, "--delay-ms", help="Delay before the outcome (or the held answer)")


def _run(kind: str, host: str, port: int, secret: str, mode: str, delay_ms: int) -> None:
    from wanglai.sandbox.bank import bank
    from wanglai.sandbox.billing import billing
    from wanglai.sandbox.partner import run

    if mode not in MODES:
        raise typer.BadParameter(f"--mode is one of {', '.join(MODES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    make = bank if kind == "bank" else billing
    asyncio.run(run(make(secret, mode=mode, delay_ms=delay_ms), host, port))


@sandbox_app.command("bank")
def bank_command(
    port: int = typer.Option(8091, help="Port"),
    secret: str = typer.Option("sandbox-bank-secret", help="Shared HMAC secret"),
    host: str = HOST,
    mode: str = MODE,
    delay_ms: int = DELAY,
) -> None:
    """Run the bank gateway SANDBOX (card charges and payouts)."""
    _run("bank", host, port, secret, mode, delay_ms)


@sandbox_app.command("billing")
def billing_command(
    port: int = typer.Option(8092, help="Port"),
    secret: str = typer.Option("sandbox-billing-secret", help="Shared HMAC secret"),
    host: str = HOST,
    mode: str = MODE,
    delay_ms: int = DELAY,
) -> None:
    """Run the operator billing SANDBOX (charges to a phone bill)."""
    _run("billing", host, port, secret, mode, delay_ms)
