# xiaobao: `make run` starts the whole assistant, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0
export RASA_TELEMETRY_ENABLED := false

.PHONY: help venv browser train run test test-unit validate test-stories test-nlu test-kb bench bench-nlu bench-kb eval risk-eval soak security lock clean audit

help:
	@echo "make run    start Redis (embedded unless REDIS_URL is set), the action server and Rasa"
	@echo "make test   run every test (pytest, data validation, conversation tests, NLU threshold)"
	@echo "make train  train the model if data/, config or domain changed"
	@echo "make bench      one run, one table: NLU, KB, end-to-end load vs bare Rasa, memory, start-up"
	@echo "make security  the attack tests of the security review: one line per finding, blocked or OPEN"
	@echo "make soak       2 replicas under mixed traffic while Redis restarts twice and a replica is killed (SOAK_ARGS=--duration 600)"
	@echo "make bench-nlu  print intent accuracy / macro-F1 and entity F1 on the held-out set"
	@echo "make bench-kb   print knowledge-base hit@1 / hit@3 / MRR and query latency"
	@echo "make eval       realistic shopper messages through the running stack: routing, citations, clarifications"
	@echo "make risk-eval  risk early warning: 60 simulated days (detection, false alarms) + urgent-alert latency on the stack"
	@echo "make audit      pip-audit of the pinned requirements (report in docs/security/)"

# Creates .venv with Python 3.10 and installs the pinned requirements; a no-op when up to date.
venv: $(STAMP)
$(STAMP): requirements.txt requirements-embed.txt
	@interp=$$(scripts/find-python310) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  echo "creating $(VENV) with $$interp"; rm -rf $(VENV); "$$interp" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-embed.txt
	touch $(STAMP)

# Browser tests use Debian's chromium (never a downloaded browser), and the scale-out test puts
# Debian's nginx in front of two Rasa replicas; CI runs as root.
browser:
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing="$$missing nginx"; \
	  if [ -n "$$missing" ]; then echo "installing Debian's$$missing for browser and scale-out tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

train: venv
	$(PY) -m bot.model train
	@$(PY) -m bot.knowledge embed

# On SIGTERM make forwards a second SIGTERM to the runner, which ignores it while it stops
# (see bot/runner.py); the runner, not make, stops the children.
# DEMO=1: the demo storefront (/shop?customer=c1001) signs demo customers' tokens; never in production.
run: export DEMO ?= 1
run: venv
	@$(PY) -m bot.runner

test: venv browser train test-unit validate test-stories test-nlu test-kb
	@echo "make test: all suites passed"

# pytest exits 5 when it collects nothing: that is a broken suite, reported as such.
test-unit: venv
	@$(PY) -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): the suite is broken" >&2; exit 1; fi; \
	exit $$rc

validate: venv
	$(PY) -m rasa data validate --domain domain --data data --config config.yml --fail-on-warnings

test-stories: venv train
	$(PY) -m bot.model test-stories

test-nlu: venv train
	$(PY) scripts/bench_nlu.py --min-intent-f1 0.90

bench: venv train
	$(PY) scripts/bench.py $(BENCH_ARGS)

bench-nlu: venv train
	$(PY) scripts/bench_nlu.py

test-kb: venv
	$(PY) scripts/bench_kb.py --min-hit1 0.85 --min-hit3 0.95

bench-kb: venv
	$(PY) scripts/bench_kb.py

# The realistic set (tests/data/realistic/) through the whole running stack; not a CI threshold.
eval: venv train
	$(PY) scripts/eval_realistic.py $(EVAL_ARGS)

# Risk early warning (issue 15): 60 simulated days through the detector, plus the urgent-alert
# latency of a safety report on the running stack (RISK_EVAL_ARGS=--no-stack skips that part).
risk-eval: venv train
	$(PY) scripts/risk_eval.py $(RISK_EVAL_ARGS)

# The attack tests of the security review (issue 13), one line per finding: blocked or OPEN.
security: venv
	$(PY) scripts/security.py

# Not part of `make test`: 10 minutes by default; fails when an accepted message is lost or duplicated.
soak: venv train
	$(PY) scripts/soak.py $(SOAK_ARGS)

# pip-audit (pinned in requirements-audit.txt, in its own .venv-audit so .venv stays as pinned)
# against requirements.txt; writes the dated report to docs/security/pip-audit.txt.
audit:
	@interp=$$(scripts/find-python310) || exit 1; \
	if [ ! -x .venv-audit/bin/pip-audit ] || ! cmp -s requirements-audit.txt .venv-audit/.requirements; then \
	  rm -rf .venv-audit && "$$interp" -m venv .venv-audit && \
	  .venv-audit/bin/pip install --quiet --disable-pip-version-check "pip==24.0" && \
	  .venv-audit/bin/pip install --quiet --disable-pip-version-check -r requirements-audit.txt && \
	  cp requirements-audit.txt .venv-audit/.requirements || exit 1; \
	fi
	.venv-audit/bin/python scripts/audit.py --out docs/security/pip-audit.txt

# Re-resolves requirements.in into the fully pinned requirements.txt.
lock:
	@interp=$$(scripts/find-python310) || exit 1; rm -rf /tmp/xiaobao-lock; "$$interp" -m venv /tmp/xiaobao-lock; \
	/tmp/xiaobao-lock/bin/pip install --quiet "pip==24.0" && /tmp/xiaobao-lock/bin/pip install --quiet -r requirements.in && \
	{ echo "# Generated by 'make lock' from requirements.in with Python 3.10. Every package is pinned."; \
	  /tmp/xiaobao-lock/bin/pip freeze; } > requirements.txt

clean:
	rm -rf models/*.tar.gz .pytest_cache results
