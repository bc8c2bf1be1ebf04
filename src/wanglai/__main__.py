"""The ``wanglai`` command."""

from __future__ import annotations

from wanglai.cli.main import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
