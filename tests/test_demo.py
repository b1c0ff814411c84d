"""The Gradio demo, for real: a server on a free loopback port, called through gradio_client
and driven by headless Chromium (its screenshot goes to the test's tmp_path; copy it over
docs/demo.png by hand when the page changes on purpose).

Offline: Gradio analytics are off, and the browser test checks that the page fetched
nothing but the demo itself.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]  # gradio_demo is importable from here: pyproject's pythonpath
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from asm.serving import wire  # noqa: E402
from asm.cropper import Cropper  # noqa: E402
from asm.errors import InvalidOption  # noqa: E402
from gradio_demo import app as demo_app  # noqa: E402

EXAMPLES = ROOT / "examples"
PHOTO = EXAMPLES / "osprey.jpg"
SCREENSHOT = ROOT / "docs" / "demo.png"  # the README's; read here, never written
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _answer(cropper, photo, **options):
    """The JSON the demo shows: the crops of ``photo`` and its focal point (one core call)."""
    return cropper.analyse(photo).crops(focal_point=True, **options).to_json()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def cropper() -> Cropper:
    return Cropper.from_pretrained()


@pytest.fixture(scope="module")
def server(cropper, tmp_path_factory):
    """The demo launched in this process (eager example caching into a temp folder)."""
    cache = tmp_path_factory.mktemp("examples-cache")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the fixture cannot take `monkeypatch`
        mp.setenv("ASM_DEMO_CACHE", str(cache))
        mp.delenv("GRADIO_EXAMPLES_CACHE", raising=False)  # the demo sets it; restored (or removed) after
        demo = demo_app.build_demo(cropper, cache_examples="eager")
        port = _free_port()
        t0 = time.monotonic()
        demo.launch(prevent_thread_lock=True, quiet=True, **demo_app.launch_kwargs(demo, "127.0.0.1", port))
        launch_s = time.monotonic() - t0
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "demo": demo, "cache": cache, "launch_s": launch_s}
        finally:
            demo.close()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory) -> Client:
    return Client(server["url"], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def _check_answer(answer: dict, width: int, height: int) -> None:
    assert (answer["width"], answer["height"]) == (width, height)
    assert answer["crops"], answer
    for c in answer["crops"]:
        x1, y1, x2, y2 = c["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, c
        assert isinstance(c["score"], float)


# --------------------------------------------------------------------------- gradio_client
def test_examples_were_cached_at_launch(server):
    logs = list(Path(server["cache"]).rglob("log.csv"))
    assert logs, "eager caching wrote nothing"
    rows = logs[0].read_text().strip().splitlines()
    assert len(rows) == 1 + len(demo_app.EXAMPLES)  # header + one row per example
    assert server["launch_s"] < 90


def test_crop_with_just_an_image(client):
    answer = client.predict(handle_file(str(PHOTO)), api_name="/crop")
    w, h = Image.open(PHOTO).size
    _check_answer(answer, w, h)
    assert [c["aspect"] for c in answer["crops"]] == demo_app.DEFAULT_ASPECTS  # one per default ratio
    # 16:9 and 1:1 crops have their exact ratios (up to a pixel of rounding)
    for c in answer["crops"]:
        x1, y1, x2, y2 = c["box"]
        if c["aspect"] == "16:9":
            assert abs((x2 - x1) / (y2 - y1) - 16 / 9) < 0.02
        if c["aspect"] == "1:1":
            assert abs((x2 - x1) - (y2 - y1)) <= 1


def test_crop_options_and_same_answer_as_the_core(client, cropper):
    photo = EXAMPLES / "dogs-window.jpg"
    answer = client.predict(handle_file(str(photo)), ["9:16", "free"], "1.91:1", False, 2, api_name="/crop")
    w, h = Image.open(photo).size
    _check_answer(answer, w, h)
    aspects = [c["aspect"] for c in answer["crops"]]
    assert sorted(set(aspects), key=aspects.index) == ["9:16", "free", "1.91:1"] and aspects.count("free") == 2
    assert answer == _answer(cropper, photo, aspect=["9:16", "free", "1.91:1"], top_k=2)


def test_crop_view_gives_pictures(client):
    drawn, gallery, theta_avg, theta_std, answer = client.predict(
        handle_file(str(EXAMPLES / "otters.jpg")), ["16:9"], "", True, 2, True, api_name="/crop_view"
    )
    w, h = Image.open(EXAMPLES / "otters.jpg").size
    _check_answer(answer, w, h)
    assert all(c["shape"] == "circle" for c in answer["crops"]) and len(answer["crops"]) == 2
    assert Image.open(drawn).size == (w, h)
    for path in (theta_avg, theta_std):
        assert Image.open(path).size == (w, h)
    assert len(gallery) == 2
    for item, crop in zip(gallery, answer["crops"]):
        cut = Image.open(item["image"])
        x1, y1, x2, y2 = crop["box"]
        assert cut.format == "PNG" and cut.mode == "RGBA" and cut.size == (x2 - x1, y2 - y1)
        alpha = np.asarray(cut)[..., 3]
        assert alpha[0, 0] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255  # round, transparent outside
        assert crop["aspect"] in item["caption"]


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.txt"
    text.write_text("this is not a photo\n")
    tiny = tmp / "tiny.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tiny)
    huge = tmp / "huge.png"  # 80 MP in its header, ~10 kB on disk: refused before decoding
    Image.new("1", (10_000, 8_000)).save(huge)
    fake = tmp / "photo.jpg"
    fake.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a JPEG that ends after its first bytes
    return {
        "text": (text, "not an image"),
        "1x1": (tiny, "too small"),
        "too large": (huge, "too large"),
        "truncated": (fake, "photo.jpg"),
    }


def test_bad_uploads_give_readable_errors_and_the_app_stays_up(client, tmp_path):
    for name, (path, expected) in _bad_files(tmp_path).items():
        with pytest.raises(gradio_client.exceptions.AppError) as info:
            client.predict(handle_file(str(path)), api_name="/crop")
        message = str(info.value)
        assert expected in message.lower(), (name, message)
        assert "/tmp/gradio" not in message and "Traceback" not in message, message  # the user's file name, no internals
        print(f"{name}: {message}")
    with pytest.raises(gradio_client.exceptions.AppError, match="W:H"):
        client.predict(handle_file(str(PHOTO)), [], "wide", False, 1, api_name="/crop")
    with pytest.raises(gradio_client.exceptions.AppError, match="maximum"):  # Gradio checks the slider range
        client.predict(handle_file(str(PHOTO)), [], "", False, 99, api_name="/crop")
    # still serving
    _check_answer(client.predict(handle_file(str(PHOTO)), api_name="/crop"), *Image.open(PHOTO).size)


def test_thirty_concurrent_calls_all_get_answers(server):
    """30 calls at once (the count that met "Queue is full" with a queue of 16) all get crops."""
    clients = [Client(server["url"], verbose=False) for _ in range(3)]
    jobs = [clients[i % 3].submit(handle_file(str(PHOTO)), api_name="/crop") for i in range(30)]
    answers = [job.result(timeout=300) for job in jobs]
    assert all(a["crops"] for a in answers)


def test_both_endpoints_share_one_model_run_at_a_time(server, cropper, monkeypatch):
    """Calls to /crop and /crop_view at once: the model never runs two images at a time (the
    demo's concurrency of 1, shared by both endpoints), and every call is answered."""
    running, most, lock = [0], [0], threading.Lock()
    analyse = cropper.analyse

    def counted(image):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # long enough for a second run to overlap, if the queue let it
            return analyse(image)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(cropper, "analyse", counted)
    # answers are checked, not their picture files: gradio keeps equal output files under one
    # content-hashed cache path, and three equal answers at once may rewrite it mid-download
    clients = [Client(server["url"], verbose=False, download_files=False) for _ in range(2)]
    jobs = [clients[0].submit(handle_file(str(PHOTO)), api_name="/crop") for _ in range(3)]
    jobs += [clients[1].submit(handle_file(str(PHOTO)), ["1:1"], "", False, 1, False, api_name="/crop_view")
             for _ in range(3)]
    for job in jobs:
        job.result(timeout=300)
    assert most[0] == 1


# --------------------------------------------------------------------------- --backend
class _FakeTorchServe(http.server.ThreadingHTTPServer):
    """``POST /predictions/asm`` as TorchServe runs the asm handler: the frontend's own answers
    (bearer token, request size) and multipart parsing here, the rest :mod:`asm.serving.wire`'s and
    the real Cropper's, as in the handler."""

    token = "s3cret"
    max_request_size = 100_000  # bytes; osprey.jpg passes, colorado-sign.jpg (121 kB) does not
    cropper: Cropper


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        if self.path != "/predictions/asm":
            return self._send(404, {"code": 404, "type": "ModelNotFoundException", "message": "no such model"})
        # what TorchServe itself answers (tests/test_serve.py::test_what_torchserve_itself_answers)
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._send(400, {"code": 400, "type": "InvalidKeyException",
                                    "message": "Token Authorization failed. Token either incorrect, expired, or not provided correctly"})
        if int(self.headers["Content-Length"]) > self.server.max_request_size:
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True) for part in msg.iter_parts()}
        try:
            request = wire.parse_form(fields, self.headers["Content-Type"])
            return self._send(200, wire.answer(self.server.cropper.analyse(request.image), request))
        except Exception as e:  # noqa: BLE001 - every error is an answer, as in the handler
            return self._send(*wire.error_answer(e))


@pytest.fixture(scope="module")
def fake_torchserve(cropper):
    srv = _FakeTorchServe(("127.0.0.1", 0), _Handler)
    srv.cropper = cropper
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_backend_mode(fake_torchserve, cropper):
    engine = demo_app.BackendEngine(fake_torchserve, token="s3cret")
    runner = demo_app._Runner(engine)
    try:
        photo = EXAMPLES / "desert-hike.jpg"
        drawn, gallery, theta_avg, theta_std, answer = runner.crop_view(str(photo), ["4:3", "9:16"], "", False, 2, True)
        assert answer == _answer(cropper, photo, aspect=["4:3", "9:16"], top_k=2)
        w, h = Image.open(photo).size
        assert drawn.shape == (h, w, 3) and theta_avg.shape == theta_std.shape == (h, w, 3)
        overlays = cropper.analyse(photo).overlays()  # the server's very pixels (PNG), as the local demo shows them
        np.testing.assert_array_equal(theta_avg, overlays["theta_avg"])
        np.testing.assert_array_equal(theta_std, overlays["theta_std"])
        assert len(gallery) == len(answer["crops"]) >= 3  # 9:16 has room for two; 4:3 maybe one (min_scale 1)
        for (cut, caption), crop in zip(gallery, answer["crops"]):
            x1, y1, x2, y2 = crop["box"]
            assert cut.shape == (y2 - y1, x2 - x1, 3) and crop["aspect"] in caption
        # faces, keep-regions and focus travel as form fields and come back reported
        _, _, _, _, answer = runner.crop_view(str(photo), ["1:1"], "", False, 1, False, True, "10,10,60,60", "100,100", 0.8)
        assert answer == _answer(cropper, photo, aspect="1:1", keep=[[10, 10, 60, 60]], focus=(100, 100), min_scale=0.8)
        assert answer["crops"][0]["keep_kept"] == [0] and "faces" in answer
        # circular through the backend: shapes come back, cut-outs are RGBA
        _, gallery, _, _, answer = runner.crop_view(str(photo), [], "", True, 1, False)
        assert answer["crops"][0]["shape"] == "circle" and gallery[0][0].shape[2] == 4
        # the server's refusal comes back as asm's typed error: its message and title
        with pytest.raises(gr.Error, match="lies outside the 800x534 image") as refused:
            runner.crop(str(photo), ["1:1"], "", False, 1, True, "0,0,5000,5000")
        assert refused.value.title == "Invalid option"
        # a bad image never leaves the demo; the message is asm's own
        with pytest.raises(gr.Error, match="too small"):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8)).save(buf, "PNG")
            runner.crop(buf.getvalue(), [], "", False, 1)
    finally:
        engine.close()
    for token in ("wrong", None):  # TorchServe: 400 InvalidKeyException
        bad = demo_app._Runner(demo_app.BackendEngine(fake_torchserve, token=token))
        with pytest.raises(gr.Error, match="refused the token .*check --token"):
            bad.crop(str(PHOTO), [], "", False, 1)
    big = demo_app._Runner(demo_app.BackendEngine(fake_torchserve, token="s3cret"))  # TorchServe: empty 413
    with pytest.raises(gr.Error, match=r"\(0.1 MB\) is larger than the asm server .* accepts"):
        big.crop(str(EXAMPLES / "colorado-sign.jpg"), [], "", False, 1)
    down = demo_app._Runner(demo_app.BackendEngine(f"http://127.0.0.1:{_free_port()}"))
    with pytest.raises(gr.Error, match="did not answer"):
        down.crop(str(PHOTO), [], "", False, 1)


def test_parse_options():
    o = demo_app.parse_options(["16:9", "free"], " 1.91:1, 2:3 ", False, 3)
    assert [a.label for a in o.aspects] == ["16:9", "free", "1.91:1", "2:3"] and o.top_k == 3
    o = demo_app.parse_options(["16:9"], "", True, 2.0)  # circles are 1:1, whatever was ticked
    assert o.circular and [a.label for a in o.aspects] == ["1:1"] and o.top_k == 2
    assert [a.label for a in demo_app.parse_options([], "", False, None).aspects] == ["free"]
    with pytest.raises(InvalidOption):
        demo_app.parse_options([], "0:1", False, 1)
    o = demo_app.parse_options(["1:1"], "", False, 1, False, "1,2,30,40; 5,6,70,80", " 12, 34 ", 0.75)
    assert (o.faces, o.keep, o.focus, o.min_scale) == (False, ((1, 2, 30, 40), (5, 6, 70, 80)), (12, 34), 0.75)
    with pytest.raises(InvalidOption, match="keep box 1"):
        demo_app.parse_options(["1:1"], "", False, 1, True, "1,2,30,40; 5,6", "", 0.5)


def test_faces_keep_focus_through_the_api_and_the_page(client, cropper):
    photo = EXAMPLES / "dogs-window.jpg"  # YuNet sees the dog's face as a face
    answer = client.predict(handle_file(str(photo)), ["1:1"], "", False, 1, True, "20,300,120,400", "250,250", 0.7, api_name="/crop")
    assert answer == _answer(cropper, photo, aspect="1:1", keep=[[20, 300, 120, 400]], focus=(250, 250), min_scale=0.7)
    assert len(answer["faces"]) == 1 and answer["crops"][0]["faces_kept"] == [0] and answer["crops"][0]["keep_kept"] == [0]
    drawn, _, _, _, viewed = client.predict(handle_file(str(photo)), ["1:1"], "", False, 1, False, True, "20,300,120,400",
                                            "250,250", 0.7, api_name="/crop_view")
    assert viewed == answer
    plain, _, _, _, _ = client.predict(handle_file(str(photo)), ["1:1"], "", False, 1, False, False, "", "", 0.7, api_name="/crop_view")
    with Image.open(drawn["path"] if isinstance(drawn, dict) else drawn) as a, Image.open(plain["path"] if isinstance(plain, dict) else plain) as b:
        x1, y1, x2, y2 = answer["faces"][0]["box"]
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
        assert diff[y1 - 2 : y1 + 3, x1:x2].mean() > 20  # the face's outline is drawn
    with pytest.raises(Exception, match="outside the 533x800 image"):
        client.predict(handle_file(str(photo)), ["1:1"], "", False, 1, True, "0,0,900,10", "", 0.5, api_name="/crop")


def test_examples_are_small_open_photos_with_credits():
    credits = (EXAMPLES / "README.md").read_text()
    assert 4 <= len(demo_app.EXAMPLES) <= 6
    for name, *_ in demo_app.EXAMPLES:
        path = EXAMPLES / name
        with Image.open(path) as im:
            assert im.format == "JPEG" and max(im.size) <= 800, name
        assert path.stat().st_size < 200_000, name
        assert f"`{name}`" in credits, f"{name} has no line in examples/README.md"


def test_command_line_refuses_a_missing_model(capsys):
    assert demo_app.main(["--model", "/nonexistent/model.pt"]) == 2
    assert "no asm model at '/nonexistent/model.pt'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the browser
def _chrome(tmp_path: Path, width: int, height: int):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"headless browser test needs chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER} not found)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--window-size={width},{height}", f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def test_browser_upload_crop_and_screenshot(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chrome(tmp_path, 1440, 1000)
    try:
        driver.get(server["url"])
        from selenium.common.exceptions import StaleElementReferenceException

        wait = WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])  # Svelte re-renders
        upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#asm-input input[type=file]")))
        upload.send_keys(str(PHOTO))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#asm-input img")))
        wait.until(EC.element_to_be_clickable((By.ID, "asm-run"))).click()

        def loaded(selector: str, n: int = 1):
            return lambda d: d.execute_script(
                "const imgs = [...document.querySelectorAll(arguments[0])];"
                "return imgs.length >= arguments[1] && imgs.every(i => i.complete && i.naturalWidth > 0);",
                selector, n,
            )

        wait.until(loaded("#asm-gallery img", len(demo_app.DEFAULT_ASPECTS)))
        for sel in ("#asm-drawn img", "#asm-theta-avg img", "#asm-theta-std img"):
            wait.until(loaded(sel))
        wait.until(lambda d: "crops" in d.find_element(By.ID, "asm-json").text)
        assert "θ_avg: where the content matters" in driver.page_source
        assert "θ_std: where placement matters" in driver.page_source

        # the whole page in one picture
        for _ in range(3):  # a viewport as tall as the page (resizing reflows it; settle)
            height = int(driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"])
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1440, "height": min(max(height, 900), 2400), "deviceScaleFactor": 1, "mobile": False},
            )
            time.sleep(0.3)
        driver.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur();")
        time.sleep(1.0)
        png = driver.get_screenshot_as_png()
        shot = Image.open(io.BytesIO(png)).convert("RGB")
        assert shot.width >= 1200 and shot.height >= 900
        shot.save(tmp_path / "demo.png", optimize=True)  # full colour: a palette bands the heatmaps
        with Image.open(SCREENSHOT) as committed:  # the README's picture is of this page, at this width
            assert committed.width == shot.width and committed.height >= 900

        # offline: every network request the page made went to the demo itself
        urls = set()
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.add(message["params"]["request"]["url"])
        outside = sorted(u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(server["url"]))
        assert not outside, outside

        # a bundled example: its options and its cached answer (round crops) fill the page
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#asm-examples button.gallery-item")[1].click() or True)  # otters
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#asm-circular input[type=checkbox]").is_selected(), "example options")
        wait.until(lambda d: '"circle"' in d.find_element(By.ID, "asm-json").text, "example answer")
        wait.until(loaded("#asm-gallery img", 2), "example cut-outs")  # the otters' top 2 round crops
        # every round cut-out is whole inside the gallery (a fixed-height row used to cut them)
        cut = driver.execute_script(
            "const wrap = document.querySelector('#asm-gallery .grid-wrap').getBoundingClientRect();"
            "return [...document.querySelectorAll('#asm-gallery img')].map(i => i.getBoundingClientRect())"
            ".filter(r => r.top < wrap.top - 1 || r.bottom > wrap.bottom + 1 || r.left < wrap.left - 1 || r.right > wrap.right + 1)"
            ".map(r => [r.top, r.bottom, wrap.top, wrap.bottom]);")
        assert not cut, cut
        # the heatmap switch hides the θ maps
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#asm-heatmap input[type=checkbox]").click() or True)
        wait.until(lambda d: not any(e.is_displayed() for e in d.find_elements(By.ID, "asm-heat")), "heatmaps hidden")

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors

        # a failure: one message (the toast) and one badge, not an "Error" on each of the five outputs
        broken = tmp_path / "photo.jpg"
        broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
        driver.execute_script("document.querySelector('#asm-input button[aria-label=\"Clear\"]')?.click()")
        upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#asm-input input[type=file]")))
        upload.send_keys(str(broken))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#asm-input img")))
        wait.until(EC.element_to_be_clickable((By.ID, "asm-run"))).click()
        wait.until(lambda d: "damaged" in d.find_element(By.CSS_SELECTOR, ".toast-body").text, "error toast")
        badges = driver.execute_script(
            "return [...document.querySelectorAll('.wrap .error')].filter(e => e.offsetParent !== null).length")
        assert badges == 1, badges
    finally:
        driver.quit()


# --------------------------------------------------------------------------- issue 14: `make demo` as a user runs it
@pytest.fixture(params=["eager", "lazy"])
def demo_in_home(request, tmp_path):
    """``python -m gradio_demo.app`` as ``make demo`` starts it, with a HOME of its own inside the real
    home folder (not under /tmp, which Gradio serves anyway and so hides path problems): the
    examples cache lands in the default place, ``$HOME/.cache/asm``."""
    import subprocess
    import tempfile

    home = Path(tempfile.mkdtemp(prefix=".asm-test-home-", dir=Path.home()))
    assert not str(home).startswith(tempfile.gettempdir())
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ASM_DEMO_CACHE", "GRADIO_EXAMPLES_CACHE", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gradio_demo.app", "--port", str(port), "--cache-examples", request.param],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, timeout=240)
        yield {"url": f"http://127.0.0.1:{port}/", "home": home, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def test_browser_example_with_the_cache_in_the_home_folder(demo_in_home, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chrome(tmp_path, 1440, 1000)
    try:
        driver.get(demo_in_home["url"])
        wait = WebDriverWait(driver, 120, ignored_exceptions=[StaleElementReferenceException])
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#asm-examples button.gallery-item")) == len(demo_app.EXAMPLES))
        driver.find_elements(By.CSS_SELECTOR, "#asm-examples button.gallery-item")[1].click()  # otters: round crops
        wait.until(lambda d: '"circle"' in d.find_element(By.ID, "asm-json").text or _error_shown(d), "example answer")
        assert not _error_shown(driver), demo_in_home["log"].read_text()[-3000:]
        wait.until(lambda d: d.execute_script(
            "const imgs = [...document.querySelectorAll('#asm-gallery img')];"
            "return imgs.length >= 2 && imgs.every(i => i.complete && i.naturalWidth > 0);"), "example cut-outs")
        assert list((demo_in_home["home"] / ".cache" / "asm" / "gradio-examples").iterdir()), "the cache is not in ~/.cache/asm"
        assert "InvalidPathError" not in demo_in_home["log"].read_text()
    finally:
        driver.quit()


def _error_shown(driver) -> bool:
    return bool(driver.execute_script(
        "return [...document.querySelectorAll('.error, .toast-body.error')].some(e => e.offsetParent !== null)"))


def test_long_input_is_echoed_short(cropper):
    runner = demo_app._Runner(demo_app.LocalEngine(cropper))
    for custom in ("9" * 100_000 + ":1", "w" * 100_000):
        with pytest.raises(gr.Error) as info:
            runner.crop(str(PHOTO), [], custom, False, 1)
        assert len(info.value.message) < 250, info.value.message[:300]


@pytest.mark.parametrize("name, before, after", [("search.py", "a = 1\n", "a = 2\n"),
                                                  ("framing.json", '{"weight": 0.25}', '{"weight": 0.5}')])
def test_example_cache_is_keyed_on_code_and_fitted_data_in_subpackages(tmp_path, monkeypatch, name, before, after):
    """A change under asm/search/ (where the search lives), in code or in a refitted calibration
    (framing.json: free crops' shape bias), must not serve stale cached crops."""
    from types import SimpleNamespace

    (tmp_path / "search").mkdir()
    (tmp_path / "viz.py").write_text("")
    (tmp_path / "search" / name).write_text(before)
    monkeypatch.setattr(demo_app.viz, "__file__", str(tmp_path / "viz.py"))
    monkeypatch.setenv("ASM_DEMO_CACHE", str(tmp_path / "cache"))
    engine = SimpleNamespace(fingerprint=lambda: "model")
    key = demo_app._cache_dir(engine)
    (tmp_path / "search" / name).write_text(after)
    assert demo_app._cache_dir(engine) != key

