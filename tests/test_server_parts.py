"""The server's parts on their own: config, model registry, backends and their thread budget, the batcher."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

from neurender.proto.neurender.v1 import render_pb2
from neurender.server.backends import BackendError, choose_providers
from neurender.server.batcher import Batcher, Job
from neurender.server.config import DEFAULT_CONFIG_FILE, ConfigError, ServerConfig, available_cores, config_from_dict, load_config
from neurender.server.metrics import Metrics
from neurender.server.registry import RegistryError, load_registry
from neurender.server.session import Session, resolve_open
from tests.server_support import TEST_CONFIG, DirectStep, label_sequence, running_server
from neurender.engine_plugin.client import RenderClient


def test_serve_yaml_documents_exactly_the_defaults():
    assert load_config(DEFAULT_CONFIG_FILE) == ServerConfig()


@pytest.mark.parametrize("raw, phrase", [
    ({"max_batchh": 4}, "unknown setting(s) ['max_batchh']"),
    ({"max_batch": "8"}, "max_batch is '8', expected an integer"),
    ({"max_batch": 0}, "max_batch is 0: expected at least 1"),
    ({"backend": "tensorflow"}, "backend 'tensorflow': expected one of onnxruntime, torch"),
    ({"tls": {"cert_file": "c.pem"}}, "tls needs both cert_file and key_file"),
    ({"providers": "CPUExecutionProvider"}, "providers must be a list"),
    ({"idle_timeout_s": 0}, "idle_timeout_s is 0.0: expected more than 0"),
])
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
        result = subprocess.run([sys.executable, "-m", "neurender.cli", "serve", "--address", "127.0.0.1:0", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and phrase in result.stderr, result.stderr


def test_thread_budget_fits_the_cores(tiny_models_dir):
    workers = 2
    config = replace(TEST_CONFIG, workers=workers)
    assert config.resolved_intra_op_threads() * workers <= max(available_cores(), workers)
    model = load_registry(tiny_models_dir, config).get("tiny")
    assert model.backend.session.get_session_options().intra_op_num_threads == config.resolved_intra_op_threads()
    assert replace(config, intra_op_threads=3).resolved_intra_op_threads() == 3


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


def test_torch_backend_serves_the_same_frames(tiny_models_dir, tiny_bundle_dir):
    labels = label_sequence(3, 32, 32)
    direct = DirectStep(tiny_bundle_dir)
    expected = [direct(f) for f in labels]
    with running_server(tiny_models_dir, backend="torch") as server, RenderClient(server.address) as client:
        with client.session("tiny", (32, 32)) as session:
            got = [session.render(labels=f) for f in labels]
    for g, e in zip(got, expected):  # the same network in another runtime: equal up to float rounding
        assert np.abs(g.astype(int) - e.astype(int)).max() <= 2
