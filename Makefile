# Two commands matter: `make run` (demo on SQLite, nothing else needed) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench worker beat venv migrate seed lint fmt fake-store clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "  Demo workspace:  http://$(HOST):$(PORT)/w/demo/"
	@echo "  Sign in with:    demo@example.com / demo-password-1"
	@echo ""
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

TYPED := crm/services.py crm/selectors.py customers/services customers/selectors.py \
	integrations/services.py integrations/selectors.py segments/services.py segments/selectors.py \
	campaigns/services.py campaigns/selectors.py support/services.py support/selectors.py \
	analytics/services.py analytics/selectors.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)
	$(BIN)/python manage.py makemigrations --check --dry-run > /dev/null || (echo "Missing migrations: run manage.py makemigrations" && exit 1)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

worker: $(STAMP)
	$(BIN)/celery -A crm worker -Q default,sync,email,analytics -l INFO

beat: $(STAMP)
	$(BIN)/celery -A crm beat -l INFO -s var/celerybeat-schedule

fake-store: $(STAMP)
	$(BIN)/python manage.py fake_store

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/db.sqlite3* var/staticfiles
