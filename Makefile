# The two things a new user types: `make demo` and `make test`. Both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint protos clean pose-env

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# MediaPipe Pose in its own environment (mediapipe==0.10.14 needs numpy<2 and protobuf<5), for pose
# extraction from footage and tests/test_retarget_pose_extract.py (which skips without it).
POSE_VENV := .venv-pose
POSE_STAMP := $(POSE_VENV)/.installed

$(POSE_STAMP): $(STAMP)
	$(BIN)/neurender pose-env --path $(POSE_VENV)
	touch $(POSE_STAMP)

pose-env: $(POSE_STAMP)

demo: setup
	$(BIN)/neurender demo --out out/demo

test: setup
	$(MAKE) pose-env || echo "make pose-env failed: tests/test_retarget_pose_extract.py will skip"
	$(BIN)/python -m pytest -q

protos: setup
	$(BIN)/python -m neurender.proto.generate

clean:
	rm -rf $(VENV) $(POSE_VENV) out runs
