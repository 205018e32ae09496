# rvforge: `make demo` runs the main job, `make test` runs the whole test suite.
# Both do all set-up on a fresh Debian machine with only Python, pip and apt:
# they install uv (from PyPI) and the system packages in .ci/apt-packages.

PYTHON ?= python3
UV := $(PYTHON) -m uv
APT_PACKAGES := $(shell grep -v '^\#' .ci/apt-packages)
FIXTURE := tests/data/alpine/alpine-minirootfs-3.20.3-riscv64.tar.gz
IMAGE := build/alpine-3.20.3-riscv64.cpio.gz
DEBIAN_IMAGE := build/debian-trixie-riscv64.cpio.gz
QEMU10_DIR := build/qemu-10

.PHONY: setup setup-system setup-python setup-qemu10 test-cache demo install lint test bench wheels clean

setup: setup-system setup-python

setup-system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

setup-python:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --all-packages --quiet
	@# bytecode for the venv and the workspace, as a pip install leaves it: uv writes none, and
	@# with PYTHONDONTWRITEBYTECODE set every rvforge start would compile its imports again
	@# (0.4 s a command; a third of a CLI-heavy test file's time). Only changed files after once.
	@$(UV) run --quiet python -m compileall -q -j 0 \
		"$$($(UV) run --quiet python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
		rvforge-*/src tests/plugins/*/src >/dev/null

# QEMU 10 beside the system's 7.2 for the tests that need rva23s64/max: bookworm-backports'
# qemu-system-riscv, qemu-system-data and opensbi, verified and unpacked with dpkg -x into
# $(QEMU10_DIR) (no apt source added, nothing installed). Quick when already there.
setup-qemu10: setup-python
	@$(UV) run --quiet python .ci/qemu10.py $(QEMU10_DIR) >/dev/null

# The main job: build a riscv64 initramfs from the real Alpine minirootfs (audited for
# QEMU's virt CPU), list it, boot it and run a command in it; then the same for Debian
# trixie from the Debian mirror of this machine's apt sources.
demo: setup
	$(UV) run rvforge build --provider local --source $(FIXTURE) -o $(IMAGE)
	$(UV) run rvforge inspect $(IMAGE) | head -n 20
	$(UV) run rvforge run $(IMAGE) -- cat /etc/alpine-release
	$(UV) run rvforge build --provider debootstrap -o $(DEBIAN_IMAGE)
	$(UV) run rvforge run $(DEBIAN_IMAGE) -- cat /etc/os-release

# `rvforge` on PATH for every shell: the checkout (core and plugins, editable) as a uv tool
# in ~/.local/bin.
install: setup-python
	$(UV) tool install --reinstall --editable ./rvforge-core --with-editable ./rvforge-alpine \
		--with-editable ./rvforge-debootstrap --with-editable ./rvforge-qemu

# The lint and type gates (configured in pyproject.toml): ruff over the workspace; mypy over
# the four packages' sources and the example plugin, then over each tests directory on its
# own (they share module names such as conftest; MYPYPATH lets each import its helpers).
TEST_DIRS := rvforge-core/tests rvforge-alpine/tests rvforge-debootstrap/tests rvforge-qemu/tests
lint: setup-python
	$(UV) run ruff check .
	$(UV) run mypy
	MYPYPATH=tests $(UV) run mypy conftest.py .ci tests --exclude 'tests/plugins/'
	for dir in $(TEST_DIRS); do MYPYPATH=$$(dirname $$dir):tests $(UV) run mypy $$dir || exit 1; done

# The tests' own cache (build/test-cache; conftest.py), filled with what they download (the
# Debian kernel and packages, the binutils 2.44 sysroot, riscv64 wheels) once, before they run.
test-cache: setup-python
	$(UV) run --quiet python .ci/seed_test_cache.py

test: setup setup-qemu10 test-cache
	$(UV) run pytest

bench: setup
	$(UV) run python benchmarks/pack.py
	$(UV) run python benchmarks/audit.py
	$(UV) run python benchmarks/boot.py
	$(UV) run python benchmarks/debian.py

wheels: setup-python
	$(UV) build --all-packages --out-dir dist

clean:
	rm -rf build dist .pytest_cache
