"""deploy/kserve: the InferenceService manifest and the model-store layout `make kserve` builds.

There is no Kubernetes cluster here, so the manifest is checked for its structure only (the
fields KServe's TorchServe runtime reads); the v2 protocol itself is tested against a real
TorchServe in tests/test_serve.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
KSERVE = REPO / "deploy" / "kserve"


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_inference_service_manifest():
    [doc] = list(yaml.safe_load_all((KSERVE / "inferenceservice.yaml").read_text()))
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == "asm"  # the model name in /v2/models/asm/infer
    predictor = doc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "pytorch"  # selects KServe's TorchServe runtime
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"].split("://")[0] in ("s3", "gs", "pvc", "https", "http", "azure")
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    # one TorchServe worker per requested CPU (each runs one torch thread)
    config = _properties((KSERVE / "config.properties").read_text())
    snapshot = json.loads(config["model_snapshot"])
    [versions] = snapshot["models"].values()
    [settings] = versions.values()
    assert int(model["resources"]["requests"]["cpu"]) == settings["minWorkers"] == settings["maxWorkers"]
    assert list(snapshot["models"]) == ["asm"] and settings["marName"] == "asm.mar"
    assert config["model_store"] == "/mnt/models/model-store" and config["load_models"] == "all"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make not found")
def test_make_kserve_builds_the_layout(tmp_path):
    archiver = Path(sys.executable).with_name("torch-model-archiver")
    if not archiver.exists():
        pytest.skip("torch-model-archiver not installed (pip install -e '.[serve]')")
    out = tmp_path / "kserve"
    cmd = ["make", "--no-print-directory", "kserve", f"KSERVE_DIR={out}", f"MODEL_STORE={tmp_path / 'store'}",
           f"SERVE_BUILD={tmp_path / 'build'}", f"PY={sys.executable}", f"ARCHIVER={archiver}"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "config/config.properties", "model-store/asm.mar"]
    with zipfile.ZipFile(out / "model-store" / "asm.mar") as mar:
        manifest = json.loads(mar.read("MAR-INF/MANIFEST.json"))
        assert "kserve_v2.py" in mar.namelist()  # the v2 protocol travels with the handler
    config = _properties((out / "config" / "config.properties").read_text())
    [versions] = json.loads(config["model_snapshot"])["models"].values()
    assert list(versions) == [manifest["model"]["modelVersion"]]  # TorchServe loads it by this version
