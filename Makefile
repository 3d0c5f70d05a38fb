# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench bench-peer demo install compose-check clean messages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	@set -e; for b in bench/events.py bench/identity.py bench/identity_cpu.py bench/crm.py bench/routing.py bench/journey.py; do \
	  if [ -f $$b ]; then echo "== $$b"; $(BIN)/python $$b; fi; done

# privacyIDEA beside Switchboard (bench/privacyidea_peer.py): apart from `make bench`
# because its first run installs privacyIDEA and sets it up (several minutes).
bench-peer: $(STAMP)
	$(BIN)/python bench/privacyidea_peer.py

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The texts customers read (shared/i18n.py): extract the message ids from the code into
# shared/locale/switchboard.pot and add new ones to every language's .po (then translate
# them: tests/unit/shared/test_i18n.py fails while one is missing or empty).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-default-keywords -k translate -k translate_plural:1,2 \
	  --no-location --sort-output --project=switchboard --copyright-holder=Switchboard \
	  -o shared/locale/switchboard.pot .
	$(BIN)/pybabel update -i shared/locale/switchboard.pot -d shared/locale -D switchboard \
	  --ignore-obsolete --width=100

# Validates docker-compose.yml with the docker client (no engine needed).
COMPOSE_ENV := POSTGRES_PASSWORD=check API_KEYS=check:check:admin SB_INTERNAL_API_KEY=check \
  CRM_HASH_KEY=check IDENTITY_SIGNING_KEYS=check IDENTITY_FINGERPRINT_KEY=check \
  IDENTITY_OTP_KEY=check IDENTITY_KBA_PEPPER=check IDENTITY_DATA_KEY=check IDENTITY_DOCUMENT_SECRET=check \
  IDENTITY_WEBHOOK_URL=https://check IDENTITY_WEBHOOK_SECRET=check
compose-check:
	@if docker compose version >/dev/null 2>&1; then $(COMPOSE_ENV) docker compose config --quiet; \
	elif command -v docker-compose >/dev/null 2>&1; then $(COMPOSE_ENV) docker-compose config --quiet; \
	else echo "no docker compose client on this machine: docker-compose.yml not validated"; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
