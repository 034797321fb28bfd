"""Talk to a running `mcp-gitops run` from the demo and the benchmarks.

    import daemon_client as dc        # with PYTHONPATH=tests/gateway
    d = dc.connect("daemon.log")     # waits for the listener and /readyz
    dc.hook(d, repo_path, secret)    # a signed push event -> the response
"""
import hashlib
import hmac
import json
import re
import time

import httpx


def wait(pred, what, log=None, limit=120, every=0.01):
    """Poll `pred` until it holds; on time-out exit, showing the daemon's log."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if pred():
                return
        except httpx.HTTPError:
            pass
        time.sleep(every)
    tail = f"; daemon log:\n{open(log).read()}" if log else ""
    raise SystemExit(f"timed out waiting for {what}{tail}")


def connect(log, limit=120):
    """A client for the daemon writing `log`, once it listens and every environment is ready."""
    wait(lambda: "listening on" in open(log).read(), "the daemon's listener", log, limit)
    addr = re.search(r"listening on ([0-9.:]+);", open(log).read()).group(1)
    d = httpx.Client(base_url=f"http://{addr}", timeout=30)
    wait(lambda: d.get("/readyz").status_code == 200, "the first cycles", log, limit)
    return d


def status(d, name):
    return next(e for e in d.get("/status").json()["environments"] if e["name"] == name)


def push_event(repo):
    """A GitHub push event for the main branch of the repository at `repo`."""
    return json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": str(repo)}}).encode()


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook(d, repo, secret):
    """POST a signed push event for `repo`."""
    body = push_event(repo)
    return d.post("/hooks/git", content=body, headers={
        "x-hub-signature-256": sign(secret, body), "x-github-event": "push",
        "content-type": "application/json"})
