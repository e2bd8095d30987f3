# Duban: `make run` sets up and runs the demo; `make test` runs the whole suite; `make faults` the fault suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test faults install init bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

init: install
	$(BIN)/duban init
	$(BIN)/duban directory load

# The demo: Prefect server, duban serve and a simulated stream of items on the minutes-long demo policy.
run: init
	DUBAN_POLICY_FILE=policy.demo.yaml $(BIN)/duban policy check
	DUBAN_POLICY_FILE=policy.demo.yaml $(BIN)/duban demo --items 200 --feed-s 300

# The unit portal's browser tests drive Debian's Chromium; a CJK font keeps their screenshots readable.
chromium:
	test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-zenhei; }

test: install chromium
	$(BIN)/python -m pytest -n 2 -q

# Kill -9 at every step that matters, outages and clock jumps; prints what was injected and what held.
faults: install
	$(BIN)/python -m pytest tests/faults -s -q

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf var .pytest_cache
