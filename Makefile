# The two commands that matter: `make run` (the whole service, embedded defaults) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run try test test-services chaos bench load lint format demo migrate clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/flask --app wsgi db upgrade

run: migrate
	@echo "Starting web, worker and beat; the API documentation will be at http://127.0.0.1:$(PORT)/api/docs"
	# The Procfile names gunicorn and celery bare, as a platform's PATH has them: put ours first.
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile web worker beat

# The service with the VirusTotal emulator as its VirusTotal: try it with no key and no internet.
try: install
	$(BIN)/python scripts/try.py

test: install
	$(BIN)/pytest

# The same suite against the real PostgreSQL and Redis on this machine.
test-services: install
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(BIN)/pytest

# The whole service on this machine, one fault at a time (scripts/chaos.py); needs PostgreSQL and
# redis-server, and a database of its own, which the run empties.
chaos: install
	CHAOS_DATABASE_URL=$${CHAOS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/scanner_chaos} \
	$(BIN)/python scripts/chaos.py

bench: install
	for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# 500 streams over 200 users beside a mixed load, on PostgreSQL + Redis as deployed (bench/load/load.py).
load: install
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/scanner} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/13} $(BIN)/python bench/load/load.py $(LOAD_ARGS)

demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache
