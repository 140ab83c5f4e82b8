# The two things a new user types: `make demo` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test protos clean pose-env blender-env blender-extension

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Blender (bpy from PyPI, about 1 GB) in its own Python 3.11 environment, for tests/test_blender_addon.py
# (which skips without it). The add-on's own dependencies come from this checkout (editable, no deps).
BLENDER_PYTHON ?= python3.11
BLENDER_VENV := .venv-blender
BLENDER_STAMP := $(BLENDER_VENV)/.installed

$(BLENDER_STAMP): engine_plugin/blender_env.txt pyproject.toml
	$(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/pip install --quiet -r engine_plugin/blender_env.txt
	$(BLENDER_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(BLENDER_STAMP)

blender-env: $(BLENDER_STAMP)

# The Blender extension zip with its grpcio/protobuf/neurender wheels, into dist/.
blender-extension: setup
	$(BIN)/python -m neurender.engine_plugin.blender_extension --out dist

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

test: setup
	$(MAKE) pose-env || echo "make pose-env failed: tests/test_retarget_pose_extract.py will skip"
	$(MAKE) blender-env || echo "make blender-env failed: tests/test_blender_addon.py will skip"
	$(BIN)/python -m pytest -q

protos: setup
	$(BIN)/python -m neurender.proto.generate

clean:
	rm -rf $(VENV) $(POSE_VENV) $(BLENDER_VENV) out runs dist
