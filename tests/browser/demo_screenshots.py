"""`make demo`: screenshots of the web UI's pages while the demo's daemon runs.

Drives Debian's chromedriver over plain WebDriver (httpx, no extra package): logs in with the
demo's token, then saves each page at desktop and phone size as PNGs under the given directory.
Usage: demo_screenshots.py DAEMON_LOG OUT_DIR TOKEN PAGE...
"""
import base64, os, shutil, socket, subprocess, sys, tempfile, time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "gateway"))
import daemon_client as dc  # noqa: E402

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def main():
    log, out, token, *pages = sys.argv[1:]
    d = dc.connect(log)
    base = str(d.base_url).rstrip("/")
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run tests/browser/install.sh (make test does)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="ui-demo-")
    try:
        wd = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        dc.wait(lambda: _ready(wd), "chromedriver", limit=30, every=0.05)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}"]
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": shutil.which("chromium"), "args": args}}}}
        sid = wd.post("/session", json=caps).json()["value"]["sessionId"]
        cmd = lambda method, path, body=None: wd.request(
            method, f"/session/{sid}{path}", json=body).json()["value"]
        find = lambda css: next(iter(cmd("POST", "/element", {"using": "css selector", "value": css}).values()))
        cmd("POST", "/url", {"url": f"{base}/ui/login"})
        cmd("POST", f"/element/{find('#token')}/value", {"text": token})
        cmd("POST", f"/element/{find('form button[type=submit]')}/click", {})
        for page in pages:
            cmd("POST", "/url", {"url": f"{base}{page}"})
            name = page.strip("/").replace("/", "-") or "root"
            for label, (w, h) in SIZES.items():
                cmd("POST", "/window/rect", {"width": w, "height": h})
                png = base64.b64decode(cmd("GET", "/screenshot"))
                path = os.path.join(out, f"{name}-{label}.png")
                with open(path, "wb") as f:
                    f.write(png)
                print(f"    {base}{page} ({w}x{h}) -> {os.path.relpath(path)}")
        cmd("DELETE", "")
    finally:
        driver.terminate()
        driver.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _ready(wd):
    try:
        return wd.get("/status").json()["value"]["ready"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False


if __name__ == "__main__":
    main()
