"""The README's picture of ``stgan app``: the page with a sample room and object, the object dragged
to a rough place and corrected by the model, in headless Chromium (Debian's chromium and
chromium-driver, and selenium: ``make test-all`` installs them).

    python tools/app_screenshot.py [--model indoor] [--out docs/app.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="indoor")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "app.png")
    ap.add_argument("--background", default="room_1.png")
    ap.add_argument("--object", default="object_1.png")
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from stgan_cli.model import modelstore
    from stgan_cli.app.server import Session, make_server

    session = Session(modelstore.open_model(args.model), 100_000_000)
    server = make_server(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1300,1330"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "bg-sample")).options) > 1)
        Select(driver.find_element(By.ID, "bg-sample")).select_by_value(args.background)
        Select(driver.find_element(By.ID, "fg-sample")).select_by_value(args.object)
        wait.until(lambda d: d.find_element(By.ID, "correct").is_enabled())
        ActionChains(driver).move_to_element(driver.find_element(By.ID, "stage")).click_and_hold() \
            .move_by_offset(-40, -25).release().perform()
        driver.find_element(By.ID, "correct").click()
        wait.until(lambda d: d.find_element(By.ID, "output").is_displayed() or d.find_element(By.ID, "error").text)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.shutdown()
        session.close()


if __name__ == "__main__":
    main()
