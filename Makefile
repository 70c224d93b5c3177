# One command runs the pipeline, one runs the tests; both install what they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EVENTS ?= 5000

.PHONY: install iac-tools browser demo test test-soak bench bench-quick bench-storage bench-stream-cpu bench-emit bench-verify bench-restart down clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $@

install: $(BIN)/.installed

$(VENV)/iac/.installed: deploy/iac-tools.txt
	$(PYTHON) -m venv $(VENV)/iac
	$(VENV)/iac/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/iac/bin/python -m pip install --quiet -r deploy/iac-tools.txt
	touch $@

iac-tools: $(VENV)/iac/.installed  ## checkov, in its own virtualenv, for the tests of deploy/

demo: install            ## the main job: stack up, publish, seal, verify, query, summary
	$(BIN)/sealtrail demo --events $(EVENTS)

browser:                 ## Debian's Chromium, which the report tests drive headless (needs root and apt-get)
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: install iac-tools browser  ## the whole test suite (starts its own broker, S3 server and PostgreSQL)
	CHECKOV=$(VENV)/iac/bin/checkov $(BIN)/pytest

bench: install           ## the benchmark: 1,000,000 events on its own embedded stack (< 15 min); bench/results/
	$(BIN)/python bench/run.py $(if $(BENCH_EVENTS),--events $(BENCH_EVENTS))

bench-quick: install     ## the same benchmark on 50,000 events (about 2 minutes), for development
	$(BIN)/python bench/run.py --quick

bench-storage: install   ## bytes per event of the trail against gzip'd JSON lines, without a broker (< 1 minute)
	$(BIN)/python bench/storage.py

bench-verify: install    ## events/s of verify over a 600,000-event bundle folder, without a broker or S3 (bundle cached in /tmp)
	$(BIN)/python bench/verify_speed.py

bench-stream-cpu: install ## CPU per event of the stream's validate -> seal -> wire path, without a broker (< 1 minute)
	$(BIN)/python bench/stream_cpu.py

bench-emit: install      ## CPU per event of AuditClient.emit: reference vs fast path, then through a real client to an embedded broker (< 2 minutes)
	$(BIN)/python bench/emit_cpu.py --broker

bench-restart: install   ## restart cost, a young trail against an old one of 1,000,000 events in 100,000 objects (built synthetically): old within 1.5x; BENCH_ARGS=--quick
	$(BIN)/python bench/restart_cost.py $(BENCH_ARGS)

test-soak: install       ## fault runs with 40 kills each, plus any test marked soak (kept out of `make test`)
	SEALTRAIL_TEST_KILLS=40 $(BIN)/pytest -m "soak or faults" tests/integration

audit: install           ## known advisories in requirements.lock (pip-audit; needs PyPI's JSON API online; not part of `make test`)
	$(BIN)/python -m pip install --quiet 'pip-audit>=2.10'
	$(BIN)/pip-audit --requirement requirements.lock --require-hashes --disable-pip --strict --progress-spinner off

down: install            ## stop the embedded stack started by `make demo`
	$(BIN)/sealtrail down

clean:
	-$(BIN)/sealtrail down
	rm -rf .sealtrail $(VENV)
