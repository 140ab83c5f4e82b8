# The two things a new user types: `make demo` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint protos clean pose-env blender-env blender-extension wheelhouse sdk-wheel

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Blender (bpy from PyPI, about 1 GB) in its own Python 3.11 environment, for tests/test_blender_addon.py
# (which skips without it). Only bpy and numpy: the add-on gets grpcio, protobuf and the SDK from its zip's wheels.
BLENDER_PYTHON ?= python3.11
BLENDER_VENV := .venv-blender
BLENDER_STAMP := $(BLENDER_VENV)/.installed

$(BLENDER_STAMP): engine_plugin/blender_env.txt
	rm -rf $(BLENDER_VENV)
	$(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/pip install --quiet -r engine_plugin/blender_env.txt
	touch $(BLENDER_STAMP)

blender-env: $(BLENDER_STAMP)

# Binary wheels from the package index that the extension zips bundle (grpcio, protobuf and their dependencies
# for every platform and Blender Python), and this Python's grpcio/protobuf/numpy for the SDK install test:
# downloaded once into .cache/wheels, read offline by the builds and tests.
WHEELHOUSE := .cache/wheels
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.fetched

$(WHEELHOUSE_STAMP): $(STAMP)
	$(BIN)/python -m neurender.engine_plugin.blender_extension --fetch-only --wheelhouse $(WHEELHOUSE)
	$(BIN)/pip freeze | grep -iE '^(numpy|grpcio|protobuf)==' > $(WHEELHOUSE)/host.txt
	$(BIN)/pip download --quiet --only-binary=:all: --dest $(WHEELHOUSE)/host -r $(WHEELHOUSE)/host.txt
	touch $(WHEELHOUSE_STAMP)

wheelhouse: $(WHEELHOUSE_STAMP)

# The pure-Python client SDK wheel (neurender-sdk: grpcio, protobuf, numpy), into dist/.
sdk-wheel: setup
	$(BIN)/python -m neurender.engine_plugin.sdk_wheel --out dist

# The Blender extension zips, one per platform and Blender Python, with their wheels, into dist/.
blender-extension: wheelhouse
	$(BIN)/python -m neurender.engine_plugin.blender_extension --wheelhouse $(WHEELHOUSE) --out dist

# MediaPipe Pose in its own environment (mediapipe==0.10.14 needs numpy<2 and protobuf<5), for pose
# extraction from footage and tests/test_retarget_pose_extract.py (which skips without it).
POSE_VENV := .venv-pose
POSE_STAMP := $(POSE_VENV)/.installed

$(POSE_STAMP): $(STAMP)
	$(BIN)/neurender pose-env --path $(POSE_VENV)
	touch $(POSE_STAMP)

pose-env: $(POSE_STAMP)

demo: setup
	$(BIN)/neurender demo --out out/demo --overwrite

# Lint (ruff: the rules in pyproject.toml), the formatting check and mypy on the floor (pyproject's [tool.mypy]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup lint
	$(MAKE) pose-env || echo "make pose-env failed: tests/test_retarget_pose_extract.py will skip"
	$(MAKE) blender-env || echo "make blender-env failed: tests/test_blender_addon.py will skip"
	$(MAKE) wheelhouse || echo "make wheelhouse failed: the extension zip and SDK install tests will skip"
	command -v haproxy >/dev/null || echo "haproxy is not installed (apt-get install -y haproxy): tests/test_load_balancer.py will skip"
	$(BIN)/python -m pytest -q

protos: setup
	$(BIN)/python -m neurender.proto.generate

clean:
	rm -rf $(VENV) $(POSE_VENV) $(BLENDER_VENV) $(WHEELHOUSE) out runs dist
