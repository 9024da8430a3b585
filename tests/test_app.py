"""``stgan app``: its HTTP API against the command line, and the page driven in a real browser
(headless Chromium through Selenium; skipped with the reason when either is missing)."""

import contextlib
import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.files import imageio
from stgan_cli.model import modelstore
from stgan_cli.app.server import Session, make_server
from stgan_cli.cli import app

from conftest import REALDATA, cutout_rgba, scene, write_rgb, write_rgba


@pytest.fixture
def served(model_dir, tmp_path):
    session = Session(modelstore.open_model(str(model_dir)), max_pixels=2_000_000)
    server = make_server(session, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", session
    server.shutdown()
    server.server_close()
    session.close()
    assert not session.folder.exists()  # nothing left behind


@contextlib.contextmanager
def serving(model_folder):
    """The page's server for ``model_folder`` on a free port: its base URL; closed afterwards."""
    session = Session(modelstore.open_model(str(model_folder)), max_pixels=2_000_000)
    server = make_server(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def call(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def upload(base, path: Path):
    status, body = call(f"{base}/api/upload", path.read_bytes(), {"X-File-Name": path.name})
    return status, json.loads(body)


def test_a_hand_placement_gives_what_the_command_line_gives(served, model_dir, tmp_path):
    base, session = served
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((480, 640)))
    status, page = call(base + "/")
    assert status == 200 and b"Correct" in page
    (_, f), (_, b) = upload(base, fg), upload(base, bg)
    assert (f["width"], f["height"], f["alpha"]) == (180, 240, True) and (b["width"], b["height"]) == (640, 480)
    a = 0.8 * np.cos(0.1), 0.8 * np.sin(0.1)
    h = [[a[0], -a[1], 250.0], [a[1], a[0], 180.0], [0, 0, 1]]
    status, body = call(f"{base}/api/composite", json.dumps(
        {"bg": {"upload": b["id"]}, "fg": {"upload": f["id"]}, "homography": h}).encode())
    assert status == 200, body
    res = json.loads(body)
    assert len(res["steps"]) == 3  # the placement, then each of the 2 generators
    (tmp_path / "app.png").write_bytes(call(base + res["result"])[1])
    first = tmp_path / "first.png"
    first.write_bytes(call(base + res["steps"][0])[1])
    sidecar = json.loads(call(base + res["sidecar"])[1])
    np.testing.assert_allclose(sidecar["initial_homography"], h, atol=1e-9)
    # the same placement through --init
    (tmp_path / "init.json").write_text(json.dumps({"homography": h, "foreground_size": {"height": 240, "width": 180},
                                                    "background_size": {"height": 480, "width": 640}}))
    r = CliRunner().invoke(app, ["composite", str(fg), str(bg), "--out", str(tmp_path / "cli.png"), "--model",
                                 str(model_dir), "--init", str(tmp_path / "init.json")])
    assert r.exit_code == 0, r.stderr
    ours, cli = imageio.read_image(tmp_path / "app.png").pixels, imageio.read_image(tmp_path / "cli.png").pixels
    assert np.array_equal(ours, cli)
    assert not np.array_equal(ours, imageio.read_image(first).pixels)  # the model moved the object


def test_bad_uploads_and_requests_get_one_line_errors(served, tmp_path):
    base, session = served
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image at all")
    status, err = upload(base, bad)
    assert status == 400 and err["error"].startswith("notes.png: not an image") and "\n" not in err["error"]
    huge = write_rgb(tmp_path / "huge.png", np.zeros((1500, 1500, 3), np.uint8))  # over --max-pixels 2,000,000
    status, err = upload(base, huge)
    assert status == 400 and "huge.png" in err["error"] and str(session.folder) not in err["error"]
    (tmp_path / "fine.txt").write_bytes(write_rgb(tmp_path / "fine.png", scene((40, 40))).read_bytes())
    status, err = upload(base, tmp_path / "fine.txt")
    assert status == 400 and "not an image file name" in err["error"]
    status, body = call(f"{base}/api/composite", b'{"bg": {"sample": "nope.png"}, "fg": {"sample": "object_0.png"}}')
    assert status == 400 and json.loads(body)["error"] == "nope.png: no such sample"
    status, body = call(f"{base}/api/composite", b'{"bg": {"sample": "room_0.png"}, "fg": {"upload": "x"}}')
    assert status == 400 and json.loads(body)["error"] == "'x': no such upload"
    status, body = call(f"{base}/api/composite", b"{not json")
    assert status == 400 and json.loads(body)["error"] == "the request is not JSON"
    for path in ("/results/../../../etc/passwd", "/results/%2e%2e/x", "/samples/../README.md"):
        assert call(base + path)[0] == 404


# --- in a real browser ------------------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (make test-all installs it)")
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test-all installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1300,1400"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


@pytest.mark.slow
def test_the_page_in_headless_chromium(served, model_dir, tmp_path):
    driver = browser()  # skips, saying why, without selenium or Chromium
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = served
    try:
        fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
        bg = write_rgb(tmp_path / "bg.png", scene((480, 640)))
        driver.get(base + "/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: "model" in d.find_element(By.ID, "model").text and "generators" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "bg-file").send_keys(str(bg))
        driver.find_element(By.ID, "fg-file").send_keys(str(fg))
        wait.until(lambda d: d.find_element(By.ID, "correct").is_enabled())
        start = (float(driver.find_element(By.ID, "cx").get_attribute("value")),
                 float(driver.find_element(By.ID, "cy").get_attribute("value")))
        canvas = driver.find_element(By.ID, "stage")
        ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(-60, -40).release().perform()
        moved = (float(driver.find_element(By.ID, "cx").get_attribute("value")),
                 float(driver.find_element(By.ID, "cy").get_attribute("value")))
        assert moved[0] < start[0] - 30 and moved[1] < start[1] - 20  # the drag moved the object
        driver.find_element(By.ID, "correct").click()
        wait.until(lambda d: d.find_element(By.ID, "output").is_displayed() or d.find_element(By.ID, "error").text)
        assert driver.find_element(By.ID, "error").text == ""
        result = driver.find_element(By.ID, "download").get_attribute("href").split("?")[0]
        steps = driver.execute_script("return state.result.steps")
        h = driver.execute_script("return homography()")
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
        # the page's placement, through the command line, gives the page's result
        (tmp_path / "app.png").write_bytes(call(result)[1])
        (tmp_path / "step0.png").write_bytes(call(base + steps[0])[1])
        (tmp_path / "init.json").write_text(json.dumps({"homography": h, "foreground_size": {"height": 240, "width": 180},
                                                        "background_size": {"height": 480, "width": 640}}))
        r = CliRunner().invoke(app, ["composite", str(fg), str(bg), "--out", str(tmp_path / "cli.png"), "--model",
                                     str(model_dir), "--init", str(tmp_path / "init.json")])
        assert r.exit_code == 0, r.stderr
        ours = imageio.read_image(tmp_path / "app.png").pixels
        assert np.array_equal(ours, imageio.read_image(tmp_path / "cli.png").pixels)
        assert not np.array_equal(ours, imageio.read_image(tmp_path / "step0.png").pixels)
        # a bad file: the page shows the command line's one-line error
        bad = tmp_path / "broken.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        driver.find_element(By.ID, "bg-file").send_keys(str(bad))
        wait.until(lambda d: d.find_element(By.ID, "error").text)
        assert driver.find_element(By.ID, "error").text.startswith("broken.png:")
        assert not driver.find_element(By.ID, "output").is_displayed()  # the old result went with the new input
        # the width field is the command line's --scale (object width / background width)
        driver.find_element(By.ID, "bg-file").send_keys(str(bg))
        wait.until(lambda d: d.find_element(By.ID, "correct").is_enabled())
        assert float(driver.find_element(By.ID, "scale").get_attribute("value")) == pytest.approx(
            driver.execute_script("return state.scale * state.fg.w / state.bg.w"), abs=1e-4)
        # an object without transparency and without a mask is not pasted as a rectangle
        driver.find_element(By.ID, "fg-file").send_keys(str(write_rgb(tmp_path / "rgb.png", cutout_rgba()[..., :3])))
        wait.until(lambda d: "no transparency" in d.find_element(By.ID, "error").text)
        assert not driver.find_element(By.ID, "correct").is_enabled()
        assert float(driver.find_element(By.ID, "scale").get_attribute("value")) == pytest.approx(0.4, abs=1e-3)
    finally:
        driver.quit()


@pytest.mark.skipif(not (REALDATA / "faces").is_dir(), reason="../shared/realdata/faces is not present")
def test_glasses_on_every_face_with_one_request(tmp_path):
    session = Session(modelstore.open_model("glasses"), max_pixels=20_000_000)
    server = make_server(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        _, g = upload(base, REALDATA / "glasses" / "glasses_00.png")
        _, face = upload(base, REALDATA / "faces" / "no_glasses" / "couple.jpg")
        status, body = call(f"{base}/api/composite", json.dumps(
            {"bg": {"upload": face["id"]}, "fg": {"upload": g["id"]}, "faces": True, "iterations": 1}).encode())
        assert status == 200, body
        res = json.loads(body)
        sidecar = json.loads(call(base + res["sidecar"])[1])
        assert len(sidecar["faces"]) == 2 and len(res["steps"]) == 2  # both people, the placement and G1
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def test_automatic_placement_returns_the_critics_map(tmp_path, monkeypatch):
    """The page's "Place automatically": no placement in the request, the critic's box and map back."""
    import torch

    from conftest import random_model
    from stgan_cli.model import critic as C

    torch.manual_seed(0)
    C.save(C.PlacementCritic(pretrained=False), tmp_path / "models" / "placement", {}, "# test\n")
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path / "models"))
    with serving(random_model(tmp_path / "indoor", domain="indoor")) as base:
        _, fg = upload(base, write_rgba(tmp_path / "fg.png", cutout_rgba()))
        _, bg = upload(base, write_rgb(tmp_path / "bg.jpg", scene((300, 400))))
        status, body = call(f"{base}/api/composite", json.dumps(
            {"bg": {"upload": bg["id"]}, "fg": {"upload": fg["id"]}, "auto": True, "iterations": 1}).encode())
        assert status == 200, body
        res = json.loads(body)
        assert res["placement"]["candidates"] > 100 and res["heatmap"].endswith("result_heatmap.png")
        status, png = call(base + res["heatmap"])
        (tmp_path / "heat.png").write_bytes(png)
        assert status == 200 and imageio.read_image(tmp_path / "heat.png").size == (300, 400)


def test_match_colours_recolours_the_object_on_the_page(tmp_path, monkeypatch):
    """The page's "match colours": the harmonizer of the models folder recolours the object."""
    import torch

    from conftest import random_model
    from stgan_cli.core import colour_map
    from stgan_cli.model import harmonizer as H

    torch.manual_seed(0)
    net = H.Harmonizer(width=8, hidden=16)
    theta = np.zeros(colour_map.N_PARAMS, np.float32)
    theta[3 * colour_map.KNOTS + 9:3 * colour_map.KNOTS + 12] = -0.2  # darker on every channel
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.from_numpy(theta))
    H.save(net.eval(), tmp_path / "models" / "harmonize", {"width": 8, "hidden": 16}, "# test\n")
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path / "models"))
    with serving(random_model(tmp_path / "indoor", domain="indoor")) as base:
        _, fg = upload(base, write_rgba(tmp_path / "fg.png", cutout_rgba()))
        _, bg = upload(base, write_rgb(tmp_path / "bg.jpg", scene((300, 400))))
        means = []
        for harmonize in (False, True):
            status, body = call(f"{base}/api/composite", json.dumps(
                {"bg": {"upload": bg["id"]}, "fg": {"upload": fg["id"]}, "homography": [[1, 0, 100], [0, 1, 40], [0, 0, 1]],
                 "iterations": 0, "harmonize": harmonize}).encode())
            assert status == 200, body
            res = json.loads(body)
            assert (res["harmonize"] is not None) == harmonize
            status, png = call(base + res["result"])
            (tmp_path / "r.png").write_bytes(png)
            means.append(imageio.read_image(tmp_path / "r.png").pixels[100:200, 150:230, :3].mean())
        assert means[1] < means[0] - 30  # -0.2 of full scale is -51 on 0-255
