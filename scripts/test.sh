#!/usr/bin/env bash
# Run the test suite the way CI does: venv, throwaway PostgreSQL, pytest.
#   scripts/test.sh [pytest args...]     LINT=1 scripts/test.sh  (lint first)
set -euo pipefail
cd "$(dirname "$0")/.."

make --no-print-directory venv smsc
# The browser tests need Debian's chromium (and fonts): installed when missing, else a no-op.
make --no-print-directory browser

if [[ "${LINT:-0}" == 1 ]]; then
    make --no-print-directory lint
fi

PG_STATE=$(mktemp -d /tmp/wanglai-pgstate.XXXXXX)
cleanup() { bash scripts/pg.sh stop "$PG_STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WANGLAI_TEST_PG_URL=$(bash scripts/pg.sh start "$PG_STATE")
export WANGLAI_TEST_PG_URL
echo "test.sh: PostgreSQL at $WANGLAI_TEST_PG_URL" >&2

# pytest's own exit code is the result; 5 ("no tests collected") stays an error.
rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || rc=$?
exit "$rc"
