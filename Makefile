# Thin wrappers: CI (.ci/run) and developers run the same commands.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv smsc browser run test lint bench bench-compare demo clean

help:
	@echo "make venv   - create .venv and install wanglai[test] (editable)"
	@echo "make run    - start the server (http://127.0.0.1:8080, SQLite under ./data)"
	@echo "make test   - run the test suite against SQLite and a throwaway PostgreSQL"
	@echo "              (extra pytest args: make test ARGS='-k foo'; LINT=1 to lint first)"
	@echo "make smsc   - install the test SMSC (npm ci in tests/smsc)"
	@echo "make browser - install Debian's chromium for the browser tests (tests/browser)"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make bench  - run bench/run.py"
	@echo "make bench-compare - Wanglai, Synapse (SQLite, PostgreSQL), ejabberd (bench/compare.py;"
	@echo "              ARGS='--users 20 --duration 5' for a quick run)"
	@echo "make demo   - run the demo"
	@echo "make clean  - remove data/ and build artifacts (keeps .venv)"

venv: $(STAMP)

# pip only re-runs when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# The test SMSC (tests/smsc: the npm smpp package) the SMPP tests and the sms bench run against.
SMSC_STAMP := tests/smsc/node_modules/.package-lock.json
smsc: $(SMSC_STAMP)

$(SMSC_STAMP): tests/smsc/package.json tests/smsc/package-lock.json
	cd tests/smsc && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The browser tests (tests/browser) drive Debian's chromium through Playwright; Playwright's own
# browser download is never used. A CJK and an emoji font make the screenshots readable (the
# client shows 往来, greetings like 恭喜发财, 🧧). Does nothing when they are all there.
CHROMIUM := /usr/bin/chromium
BROWSER_FILES := $(CHROMIUM) /usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
    /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
browser:
	@for f in $(BROWSER_FILES); do test -e $$f || missing=1; done; \
	test -z "$$missing" || { \
	    echo "make browser: installing chromium and fonts (apt-get)" >&2; \
	    log=$$(mktemp); export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei \
	        fonts-noto-color-emoji; } >"$$log" 2>&1 \
	        || { cat "$$log" >&2; rm -f "$$log"; exit 1; }; \
	    rm -f "$$log"; \
	}
	@test -x $(CHROMIUM) || { echo "make browser: $(CHROMIUM) is still missing" >&2; exit 1; }

run: venv
	$(BIN)/wanglai serve

test:
	bash scripts/test.sh $(ARGS)

lint: venv
	$(BIN)/ruff check src tests bench && $(BIN)/ruff format --check src tests bench && $(BIN)/mypy

bench: venv smsc
	$(BIN)/python bench/run.py

# Installs the peers on first use: Synapse into bench/peers/synapse/venv (psycopg2-binary too for
# synapse-pg), ejabberd and PostgreSQL (when initdb is missing) with apt-get.
bench-compare: venv
	$(BIN)/python bench/compare.py $(ARGS)

demo: venv
	$(BIN)/wanglai demo

clean:
	rm -rf data build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
