# AI Studio: `make demo` serves the studio, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install demo test bench bench-images bench-limiter bench-catalog bench-ui vendor lint format messages browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv (from PyPI) installs in seconds what pip takes half a minute for; pip is
# the fallback wherever uv cannot run.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' \
	  || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download its own).
browser:
	@bash scripts/install-browser.sh

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	STUDIO_DEMO=true bash scripts/serve.sh $(HOST) $(PORT)

test: install browser
	@bash scripts/test.sh $(ARGS)

bench: install
	$(VENV)/bin/python -m bench.streaming $(ARGS)

bench-images: install
	$(VENV)/bin/python -m bench.images $(ARGS)

bench-limiter: install
	$(VENV)/bin/python -m bench.limiter $(ARGS)

bench-catalog: install
	$(VENV)/bin/python -m bench.catalog $(ARGS)

# Lighthouse's mobile scores (npm's lighthouse driving Debian's Chromium).
bench-ui: install browser
	cd bench/ui && npm install --silent --no-audit --no-fund
	$(VENV)/bin/python -m bench.ui $(ARGS)

# Refresh the vendored icons and axe-core from npm (the files are committed).
vendor:
	bash scripts/vendor-frontend.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Update the catalogues after changing UI strings (needs GNU gettext).
messages: install
	$(BIN)/python manage.py makemessages -l ja --ignore '.venv/*' --ignore 'var/*'
	$(BIN)/python manage.py compilemessages --ignore '.venv/*'

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
