"""The cluster deployment, checked offline: the Kubernetes manifests against the API schemas bundled in
kubernetes-validate, their settings against the server's own (config, metrics, drain), the haproxy configurations
with `haproxy -c`, and the Dockerfile's install steps against the README's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from neurender.bench.cluster import HAPROXY_CFG, SERVERS_MARKER
from neurender.server.config import load_config
from neurender.server.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.30.0"  # grpc probes are GA since 1.27


def documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_replicas_drain_within_their_grace_period_and_probe_grpc_health(tmp_path):
    deployment = find("Deployment", "neurender")["spec"]["template"]["spec"]
    (tmp_path / "serve.yaml").write_text(find("ConfigMap", "neurender-serve")["data"]["serve.yaml"])
    config = load_config(tmp_path / "serve.yaml")
    container = deployment["containers"][0]
    port = int(config.address.rsplit(":", 1)[1])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == port
    assert "kill -TERM 1" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert deployment["terminationGracePeriodSeconds"] > config.drain_timeout_s
    models = container["args"][container["args"].index("--models") + 1]
    assert any(m["mountPath"] == models and m.get("readOnly") for m in container["volumeMounts"])
    assert any(p["containerPort"] == config.metrics_port for p in container["ports"])


def test_the_autoscaler_scales_on_a_metric_the_server_exports():
    exported = {metric.name for metric in Metrics().registry.collect()}
    for rule in find("HorizontalPodAutoscaler", "neurender")["spec"]["metrics"]:
        assert rule["pods"]["metric"]["name"] in exported


def test_the_cluster_haproxy_config_is_the_shipped_one_with_dns_replicas(tmp_path):
    shipped = HAPROXY_CFG.read_text()
    cluster = find("ConfigMap", "neurender-haproxy")["data"]["haproxy.cfg"]
    assert cluster.startswith(shipped[: shipped.index(SERVERS_MARKER)])
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (apt-get install -y haproxy)")
    (tmp_path / "cluster.cfg").write_text(cluster)
    for config in (HAPROXY_CFG, tmp_path / "cluster.cfg"):
        result = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{config}: {result.stdout}{result.stderr}"


def test_the_dockerfile_installs_as_the_readme_says():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Installing by hand") :]
    section = section[: section.index("\n## ", 1)]
    block = section.split("```")[1]
    readme_steps = {step.split("#")[0].strip() for line in block.splitlines() for step in line.split("&&")}
    runs = re.findall(r"^RUN (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    install = next(run for run in runs if "pip install" in run)
    assert {step.strip() for step in install.split("&&")} <= readme_steps
    assert "gcc" in section and any("gcc" in run for run in runs)  # the C compiler of the native one-hot kernel
