# make run   set up .venv, the database and demo data, then serve on http://127.0.0.1:5000
# make test  set up .venv and Chromium, lint, then the whole suite on SQLite and PostgreSQL
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
HOST    ?= 127.0.0.1
PORT    ?= 5000
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup run test test-sqlite test-postgresql lint format bench bench-smoke browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	HELPDESK_ENV=development $(BIN)/helpdesk init-db
	HELPDESK_ENV=development $(BIN)/helpdesk demo --if-empty
	@echo ""
	@echo "  helpdesk is at http://$(HOST):$(PORT)/tickets (customer form: http://$(HOST):$(PORT)/)"
	@echo "  demo login: admin@example.com / demo-password"
	@echo ""
	HELPDESK_ENV=development $(BIN)/helpdesk run --host $(HOST) --port $(PORT)

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || { \
	  echo "Installing Debian's dovecot-imapd for the IMAP fetch tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null \
	  || echo "dovecot-imapd could not be installed: the IMAP tests will be skipped"; }
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { \
	  echo "Installing Debian's DejaVu fonts for the PDF letters..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-sqlite: setup browser
	$(BIN)/pytest --db=sqlite

test-postgresql: setup browser
	$(BIN)/pytest --db=postgresql

test: lint test-sqlite test-postgresql

bench: setup
	$(BIN)/python benchmarks/bench_http.py

# Every benchmark at a tiny size: they must still seed, run and print (figures not judged).
bench-smoke: setup
	$(BIN)/python benchmarks/bench_http.py --smoke
	$(BIN)/python benchmarks/bench_plugin_overhead.py --smoke
	$(BIN)/python benchmarks/bench_mail_ingest.py --tickets 500 --messages 100
	$(BIN)/python benchmarks/bench_mail_outbound.py --mails 100 --tickets 10
	$(BIN)/python benchmarks/bench_categories_report.py --customers 1000 --orders 5000 --tickets 1000 --repeat 1
	$(BIN)/python benchmarks/bench_letters.py --smoke
	$(BIN)/python benchmarks/bench_loyalty.py --smoke
	$(BIN)/python benchmarks/bench_surveys.py --smoke
	$(BIN)/python benchmarks/bench_retention.py --smoke

clean:
	rm -rf $(VENV) instance .pytest_cache
