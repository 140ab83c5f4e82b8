"""The server's parts on their own: config, model registry, backends and their thread budget, the batcher."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

from neurender.engine_plugin.sdk.client import RenderClient
from neurender.proto.neurender.v1 import render_pb2
from neurender.server.backends import BackendError, choose_providers
from neurender.server.batcher import Batcher, Job
from neurender.server.config import (
    DEFAULT_CONFIG_FILE,
    ConfigError,
    ServerConfig,
    available_cores,
    config_from_dict,
    load_config,
)
from neurender.server.metrics import Metrics
from neurender.server.registry import RegistryError, load_registry
from neurender.server.session import Session, resolve_open
from tests.server_support import TEST_CONFIG, DirectStep, label_sequence, running_server


def test_serve_yaml_documents_exactly_the_defaults():
    assert load_config(DEFAULT_CONFIG_FILE) == ServerConfig()


@pytest.mark.parametrize(
    "raw, phrase",
    [
        ({"max_batchh": 4}, "unknown setting(s) ['max_batchh']"),
        ({"max_batch": "8"}, "max_batch is '8', expected an integer"),
        ({"max_batch": 0}, "max_batch is 0: expected at least 1"),
        ({"backend": "tensorflow"}, "backend 'tensorflow': expected one of onnxruntime, openvino, torch"),
        ({"tls": {"cert_file": "c.pem"}}, "tls needs both cert_file and key_file"),
        ({"providers": "CPUExecutionProvider"}, "providers is 'CPUExecutionProvider', expected a list of str"),
        ({"idle_timeout_s": 0}, "idle_timeout_s is 0.0: expected more than 0"),
    ],
)
def test_bad_settings_name_the_key(raw, phrase):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "serve.yaml")
    assert phrase in str(err.value) and str(err.value).startswith("serve.yaml")


def test_cli_reports_bad_config_and_missing_models(tmp_path):
    (tmp_path / "bad.yaml").write_text("workers: -1\n")
    (tmp_path / "empty").mkdir()
    runs = [
        (["--models", str(tmp_path / "empty"), "--config", str(tmp_path / "bad.yaml")], "workers is -1"),
        (["--models", str(tmp_path / "empty"), "--config", str(tmp_path / "none.yaml")], "none.yaml"),
        (["--models", str(tmp_path / "empty")], "holds no model bundle"),
    ]
    for args, phrase in runs:
        result = subprocess.run(
            [sys.executable, "-m", "neurender.cli", "serve", "--address", "127.0.0.1:0", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and phrase in result.stderr, result.stderr


def test_thread_budget_fits_the_cores(tiny_models_dir):
    workers = 2
    config = replace(TEST_CONFIG, workers=workers)
    assert config.resolved_intra_op_threads() * workers <= max(available_cores(), workers)
    model = load_registry(tiny_models_dir, config).get("tiny")
    assert model.backend.session.get_session_options().intra_op_num_threads == config.resolved_intra_op_threads()
    assert config.oversubscription() is None or available_cores() < workers
    crowded = replace(config, intra_op_threads=available_cores() + 1)
    assert crowded.resolved_intra_op_threads() == available_cores() + 1
    assert f"= {2 * (available_cores() + 1)} threads on {available_cores()} cores" in crowded.oversubscription()


def test_provider_fallback_names_what_it_fell_back_from(caplog):
    available = ort.get_available_providers()
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers(("NoSuchExecutionProvider", "CPUExecutionProvider"), available)
    assert chosen == ["CPUExecutionProvider"]
    assert "falling back from NoSuchExecutionProvider to CPUExecutionProvider" in caplog.text
    with pytest.raises(BackendError, match="none of the configured providers"):
        choose_providers(("NoSuchExecutionProvider",), available)


def test_bad_bundles_are_refused_naming_the_field(tiny_bundle_dir, tmp_path, caplog):
    models = tmp_path / "models"
    shutil.copytree(tiny_bundle_dir, models / "tiny")
    shutil.copytree(tiny_bundle_dir, models / "broken")
    broken = json.loads((models / "broken" / "model.json").read_text())
    broken.update(name="broken", schema_version=99)
    (models / "broken" / "model.json").write_text(json.dumps(broken))
    with caplog.at_level(logging.ERROR):
        registry = load_registry(models, TEST_CONFIG)
    assert registry.names() == ["tiny"]
    assert "schema_version is 99, expected 1" in caplog.text
    shutil.rmtree(models / "tiny")
    with pytest.raises(RegistryError, match="schema_version is 99"):
        load_registry(models, TEST_CONFIG)


def test_graph_inputs_must_match_the_description(tiny_bundle_dir, tmp_path):
    bundle = tmp_path / "tiny"
    shutil.copytree(tiny_bundle_dir, bundle)
    described = json.loads((bundle / "model.json").read_text())
    described["inputs"].append({"name": "depth", "dtype": "FLOAT16", "shape": [-1, -1], "required": False})
    described["max_depth"] = 10.0
    (bundle / "model.json").write_text(json.dumps(described))
    with pytest.raises(RegistryError, match="do not match model.json"):
        load_registry(bundle, TEST_CONFIG)


def test_drop_stale_replacement_keeps_the_camera_cut(tiny_models_dir):
    registry = load_registry(tiny_models_dir, TEST_CONFIG)
    open_request = render_pb2.OpenSession(model="tiny", height=32, width=32, drop_policy=render_pb2.DROP_STALE)
    session = Session.open(resolve_open(registry, open_request, TEST_CONFIG))
    batcher = Batcher(max_batch=4, max_wait_s=0, workers=1, metrics=Metrics())  # not started: nothing runs
    inputs = {"labels": np.zeros((32, 32), np.uint8)}
    cut = Job(session, 1, inputs, reset=True, on_done=lambda _: None)
    newer = Job(session, 2, inputs, reset=False, on_done=lambda _: None)
    assert batcher.submit(cut) == (True, None)
    assert batcher.submit(newer) == (True, cut)
    assert newer.reset, "the replaced frame's reset flag was lost"
    assert batcher.submit(Job(session, 3, inputs, reset=False, on_done=lambda _: None), replace_only=True)[1] is newer
    assert batcher.pending() == 1


def test_torch_backend_matches_onnx_runtime(tiny_models_dir, tiny_bundle_dir):
    """The same network in another runtime: equal up to one quantisation level on a few pixels, step by step
    on the same state (chains run apart drift: random-weight instance norm amplifies one-level differences)."""
    torch_model = load_registry(tiny_models_dir, replace(TEST_CONFIG, backend="torch")).get("tiny")
    ort_model = load_registry(tiny_models_dir, TEST_CONFIG).get("tiny")
    assert torch_model.backend.name == "torch"
    labels = label_sequence(3, 32, 32)
    state = (np.zeros((2, 2, 32, 32), np.uint8), np.zeros((2, 2, 32, 32, 3), np.uint8))
    for t, frame in enumerate(labels):
        feeds = {
            "labels": np.stack([frame, frame[::-1]]),
            "prev_labels": state[0],
            "prev_frames": state[1],
            "has_history": np.full(2, t > 0, np.uint8),
        }
        ort_out, torch_out = ort_model.backend.run(feeds), torch_model.backend.run(feeds)
        diff = np.abs(ort_out[0].astype(int) - torch_out[0].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-2, f"step {t}: max diff {diff.max()}"
        assert np.array_equal(ort_out[1], torch_out[1])
        state = ort_out[1], ort_out[2]
    with running_server(tiny_models_dir, backend="torch") as server, RenderClient(server.address) as client:
        served = client.render_frame("tiny", (32, 32), labels=labels[0])
    assert np.abs(served.astype(int) - DirectStep(tiny_bundle_dir)(labels[0]).astype(int)).max() <= 1


def test_batcher_waits_only_for_sessions_that_could_join(tiny_models_dir):
    registry = load_registry(tiny_models_dir, TEST_CONFIG)
    spec = resolve_open(registry, render_pb2.OpenSession(model="tiny", height=32, width=32), TEST_CONFIG)
    inputs = {"labels": np.zeros((32, 32), np.uint8)}

    def queue_seconds(max_wait_s: float, sessions: int) -> float:
        batcher = Batcher(max_batch=8, max_wait_s=max_wait_s, workers=1, metrics=Metrics())
        opened = [Session.open(spec) for _ in range(sessions)]
        for session in opened:
            batcher.register(session)
        done = threading.Event()
        outcomes = []
        batcher.start()
        try:
            job = Job(opened[0], 0, inputs, reset=True, on_done=lambda o: (outcomes.append(o), done.set()))
            batcher.submit(job)
            assert done.wait(60), "the frame was never run"
        finally:
            batcher.stop()
        return outcomes[0].started - job.received

    assert queue_seconds(max_wait_s=30.0, sessions=1) < 30.0  # a lone session never waits for company
    assert queue_seconds(max_wait_s=0.2, sessions=2) >= 0.2  # an idle second session is worth waiting for
