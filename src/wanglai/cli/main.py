"""The command line: ``wanglai serve | demo | chat | admin | sandbox | operator-sandbox``."""

from __future__ import annotations

import logging

import typer

from wanglai.cli.admin import admin_app
from wanglai.cli.chat import chat
from wanglai.cli.demo import register as register_demo
from wanglai.cli.sandbox import operator_sandbox, sandbox_app
from wanglai.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Wanglai server and tools.")
app.add_typer(admin_app, name="admin")
app.add_typer(sandbox_app, name="sandbox")
app.command("operator-sandbox")(operator_sandbox)
app.command("chat")(chat)
register_demo(app)


@app.callback()
def main() -> None:
    """Wanglai: messaging, contacts and sync on a durable per-user event log."""


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (WANGLAI_HOST, default 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (WANGLAI_PORT, default 8080)"),
) -> None:
    """Run the server (SQLite under ./data unless WANGLAI_DATABASE_URL says otherwise)."""
    from wanglai.store import migrate

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings.from_env(**overrides)
    # a fresh database is migrated by a child process while this one imports the server
    migration = migrate.begin_apart(settings.database_url)
    from wanglai.app import serve as run
    from wanglai.logs import setup

    setup(json_lines=settings.log_json, level=logging.INFO)
    run(settings, migration)
