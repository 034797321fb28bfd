#!/usr/bin/env bash
# `make demo`: start a local ContextForge gateway, give it a realistic configuration through its
# REST API, back it up with `mcp-gitops export`, restore the backup into a second gateway, then
# manage that gateway from an environment directory (apply, edit, plan, apply), and finally from
# a Git repository with the daemon (commit, signed webhook, change live, scheduled backup
# commit, status and metrics), export and import through its HTTP API with curl, screenshots of
# its web UI; stop everything.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CF="$HERE/cf.sh"
DIR="$ROOT/.run/demo"
BIN="$ROOT/target/debug/mcp-gitops"

"$CF" stop "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
trap '"$CF" stop "$DIR" >/dev/null 2>&1 || true; "$CF" stop "$DIR/restore" >/dev/null 2>&1 || true' EXIT

echo "==> Starting a ContextForge gateway on loopback (fresh SQLite database)"
URL="$("$CF" start "$DIR")"
PEER="$("$CF" peer "$DIR" weather-peer)"
set -a; . "$DIR/gateway.env"; set +a
TOKEN="$("$ROOT/.venv/bin/python" -m mcpgateway.utils.create_jwt_token -u "$PLATFORM_ADMIN_EMAIL" --exp 30 --admin 2>/dev/null)"
echo "    gateway $URL, peer MCP server $PEER"

post() { # path json -> prints the created entity's id
  curl -fsS -X POST "$URL$1" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$2" \
    | "$ROOT/.venv/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id") or d.get("uri") or "")'
}

echo "==> Configuring it through the REST API: tools with credentials, a peer gateway, prompts, resources, a server, roots"
W=$(post /v1/tools '{"tool":{"name":"weather-current","url":"https://api.weather.example.com/v1/current","integration_type":"REST","request_type":"GET","description":"Current weather for a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"tags":["weather","public-api"],"auth_type":"authheaders","auth_headers":[{"key":"X-API-Key","value":"demo-weather-key-123"}]}}')
F=$(post /v1/tools '{"tool":{"name":"weather-forecast","url":"https://api.weather.example.com/v1/forecast","integration_type":"REST","request_type":"GET","description":"Five-day forecast","tags":["weather"],"auth_type":"authheaders","auth_headers":[{"key":"X-API-Key","value":"demo-weather-key-123"}]}}')
G=$(post /v1/tools '{"tool":{"name":"github-create-issue","url":"https://api.github.example.com/repos/acme/app/issues","integration_type":"REST","request_type":"POST","description":"Open an issue","tags":["github"],"auth_type":"bearer","auth_token":"ghp_demoTOKEN"}}')
C=$(post /v1/tools '{"tool":{"name":"crm-search","url":"https://crm.example.com/api/search","integration_type":"REST","request_type":"GET","description":"Search CRM contacts","tags":["crm"],"auth_type":"basic","auth_username":"svc-crm","auth_password":"demo-crm-pass"}}')
post /v1/gateways "{\"name\":\"weather-peer\",\"url\":\"$PEER\",\"transport\":\"STREAMABLEHTTP\",\"description\":\"Team weather MCP server\",\"auth_type\":\"bearer\",\"auth_token\":\"demo-peer-token\",\"tags\":[\"peers\"]}" >/dev/null
P=$(post /v1/prompts '{"prompt":{"name":"summarize","description":"Summarise a text","template":"Summarise in {{ max_words }} words:\n{{ text }}","arguments":[{"name":"text","description":"Text to summarise","required":true},{"name":"max_words","description":"Word budget","required":true}],"tags":["writing"]}}')
post /v1/prompts '{"prompt":{"name":"code-review","description":"Review code","template":"Review this {{ language }} code:\n{{ code }}","arguments":[{"name":"language"},{"name":"code"}],"tags":["engineering"]}}' >/dev/null
R=$(post /v1/resources '{"resource":{"name":"runbook","uri":"docs://ops/runbook","description":"On-call runbook","mime_type":"text/markdown","content":"# Runbook\n1. Check the dashboard.\n2. Page the owner.","tags":["ops"]}}')
post /v1/resources '{"resource":{"name":"limits","uri":"docs://ops/limits.json","mime_type":"application/json","content":"{\"rps\": 50}","tags":["ops"]}}' >/dev/null
ECHO=$(curl -fsS "$URL/v1/tools?limit=0" -H "Authorization: Bearer $TOKEN" | "$ROOT/.venv/bin/python" -c 'import json,sys; print(next(t["id"] for t in json.load(sys.stdin) if t["name"]=="weather-peer-echo"))')
post /v1/servers "{\"server\":{\"name\":\"assistant\",\"description\":\"Everything the assistant may use\",\"associated_tools\":[\"$W\",\"$F\",\"$G\",\"$C\",\"$ECHO\"],\"associated_resources\":[\"$R\"],\"associated_prompts\":[\"$P\"],\"tags\":[\"prod\"]}}" >/dev/null
post /v1/roots '{"uri":"file:///srv/shared","name":"shared"}' >/dev/null
post /v1/roots '{"uri":"https://git.example.com/acme/app","name":"app-repo"}' >/dev/null

echo "==> mcp-gitops export --gateway $URL --user $PLATFORM_ADMIN_EMAIL --out .run/demo/backup.json"
"$BIN" export --gateway "$URL" --user "$PLATFORM_ADMIN_EMAIL" --out "$DIR/backup.json" --verbose

echo
echo "==> What the backup holds (credentials stay encrypted, resource content and server links included):"
"$ROOT/.venv/bin/python" - "$DIR/backup.json" 2>/dev/null <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["entities"]
t = next(t for t in e["tools"] if t["name"] == "github-create-issue")
print(f'  tool github-create-issue: auth_type={t["auth_type"]} auth_value={t["auth_value"][:32]}... (AES-256-GCM)')
s = e["servers"][0]
print(f'  server {s["name"]}: tools={s["tool_ids"]} resources={s["resource_uris"]} prompts={s["prompt_names"]}')
r = next(r for r in e["resources"] if r["uri"] == "docs://ops/runbook")
print(f'  resource {r["uri"]}: {len(r["content"])} characters of {r["mime_type"]}')
PY
echo
echo "==> The gateway's own decode_auth reads our encrypted credentials:"
"$ROOT/.venv/bin/python" - "$DIR/backup.json" 2>/dev/null <<'PY'
import json, sys
from mcpgateway.utils.services_auth import decode_auth
d = json.load(open(sys.argv[1]))
for t in d["entities"]["tools"]:
    headers = decode_auth(t["auth_value"])
    print(f'  {t["name"]}: headers {sorted(headers)} (values not shown)')
PY
echo
echo "==> Restoring the backup into a second, empty gateway"
URL2="$("$CF" start "$DIR/restore")"
echo "==> mcp-gitops import .run/demo/backup.json --gateway $URL2 --user $PLATFORM_ADMIN_EMAIL --verbose"
"$BIN" import "$DIR/backup.json" --gateway "$URL2" --user "$PLATFORM_ADMIN_EMAIL" --verbose
echo
echo "==> The same import again: nothing to do, zero write requests"
"$BIN" import "$DIR/backup.json" --gateway "$URL2" --user "$PLATFORM_ADMIN_EMAIL"
echo
echo "==> GitOps: the backup becomes the desired state of an environment directory (prune on)"
ENVD="$DIR/envs/prod"
mkdir -p "$ENVD"
cp "$DIR/backup.json" "$ENVD/desired.json"
cat >"$ENVD/mcp-gitops.yaml" <<YAML
gateway: $URL2
user: $PLATFORM_ADMIN_EMAIL
jwt_secret: {env: JWT_SECRET_KEY}
secret: {env: AUTH_ENCRYPTION_SECRET}
prune: {enabled: true, owner: prod}
YAML
echo "==> mcp-gitops apply .run/demo/envs/prod   (first apply: tags what the environment owns)"
"$BIN" apply "$ENVD"
echo
echo "==> Editing the desired state: a new description, a tool dropped from the server and deleted"
"$ROOT/.venv/bin/python" - "$ENVD/desired.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
e = d["entities"]
next(t for t in e["tools"] if t["name"] == "weather-forecast")["description"] = "Seven-day forecast"
e["tools"] = [t for t in e["tools"] if t["name"] != "crm-search"]
for s in e["servers"]:
    s["tool_ids"] = [t for t in s["tool_ids"] if t != "crm-search"]
json.dump(d, open(p, "w"), indent=2)
PY
echo "==> mcp-gitops plan .run/demo/envs/prod"
"$BIN" plan "$ENVD"
echo
echo "==> mcp-gitops apply .run/demo/envs/prod"
"$BIN" apply "$ENVD"
echo
echo "==> mcp-gitops plan .run/demo/envs/prod --detailed-exitcode   (converged: exit 0)"
"$BIN" plan "$ENVD" --detailed-exitcode
echo
echo "==> Continuous GitOps: the environment goes into a Git repository, and the daemon keeps the gateway at its branch head"
G="$DIR/git"
mkdir -p "$G"
gitc() { git -c user.name=demo -c user.email=demo@example.com -c init.defaultBranch=main "$@"; }
gitc init -q --bare "$G/config.git"
gitc clone -q "$G/config.git" "$G/work" 2>/dev/null
mkdir -p "$G/work/envs"
cp -r "$ENVD" "$G/work/envs/prod"
# In Git only the desired state: the gateway and its credentials are daemon.yaml's to say.
echo "prune: {enabled: true, owner: prod}" >"$G/work/envs/prod/mcp-gitops.yaml"
(cd "$G/work" && gitc add -A && gitc commit -qm "prod environment" && gitc push -q origin HEAD:main)
cat >"$G/daemon.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: state
api:
  open_status: true
  open_metrics: true
  tokens:
    - {name: demo, role: operator, token: {env: DEMO_UI_TOKEN}}
  gateways:   # the first gateway, without a desired state: the API exports and imports it
    - {name: origin, gateway: {url: "$URL", user: $PLATFORM_ADMIN_EMAIL, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: AUTH_ENCRYPTION_SECRET}}}
webhook: {secret: {env: DEMO_WEBHOOK_SECRET}}
ui: {}
environments:
  - name: prod
    source: {git: {url: config.git, branch: main, path: envs/prod}}
    gateway: {url: "$URL2", user: $PLATFORM_ADMIN_EMAIL, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: AUTH_ENCRYPTION_SECRET}}
    interval: 30s
    backup: {schedule: "*/3 * * * * *", path: backups/prod.json}
YAML
sed 's/^/    /' "$G/daemon.yaml"
export DEMO_WEBHOOK_SECRET="demo-webhook-$RANDOM$RANDOM"
export DEMO_UI_TOKEN="demo-ui-token-$RANDOM$RANDOM$RANDOM"
echo "==> mcp-gitops run --config .run/demo/git/daemon.yaml   (in the background)"
"$BIN" run --config "$G/daemon.yaml" 2>"$G/daemon.log" &
DPID=$!
trap 'kill $DPID 2>/dev/null || true; "$CF" stop "$DIR" >/dev/null 2>&1 || true; "$CF" stop "$DIR/restore" >/dev/null 2>&1 || true' EXIT
PYTHONPATH="$HERE" "$ROOT/.venv/bin/python" - "$G" "$URL2" "$TOKEN" "$DEMO_WEBHOOK_SECRET" <<'PY'
import json, os, subprocess, sys, time
import httpx
import daemon_client as dc
g, gw_url, token, secret = sys.argv[1:5]
log = os.path.join(g, "daemon.log")
wait = lambda pred, what: dc.wait(pred, what, log, every=0.05)
d = dc.connect(log)
addr = str(d.base_url).removeprefix("http://").rstrip("/")
gw = httpx.Client(base_url=gw_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
git = lambda *a: subprocess.run(["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com", *a],
                                cwd=os.path.join(g, "work"), check=True, capture_output=True, text=True).stdout
status = lambda: dc.status(d, "prod")
s = status()
print(f"    {addr}/status: prod {s['health']} at {s['revision'][:12]}, last result {s['last_result']['outcome']}")
path = os.path.join(g, "work/envs/prod/desired.json")
doc = json.load(open(path))
t = next(t for t in doc["entities"]["tools"] if t["name"] == "weather-current")
t["description"] = "Current weather for a city (changed by a commit)"
json.dump(doc, open(path, "w"), indent=2)
git("commit", "-qam", "weather-current: a better description")
git("push", "-q", "origin", "HEAD:main")
head = git("rev-parse", "HEAD").strip()
print(f"==> Pushed {head[:12]}; the repository's push webhook (signed with the shared secret):")
repo = os.path.join(g, "config.git")
bad = d.post("/hooks/git", content=dc.push_event(repo), headers={"x-hub-signature-256": "sha256=" + "0" * 64})
print(f"    POST /hooks/git with a wrong signature -> {bad.status_code}")
t0 = time.monotonic()
r = dc.hook(d, repo, secret)
print(f"    POST /hooks/git signed -> {r.status_code} {r.json()}")
tid = next(x["id"] for x in gw.get("/v1/tools", params={"limit": 0}).json() if x["name"] == "weather-current")
wait(lambda: "changed by a commit" in (gw.get(f"/v1/tools/{tid}").json().get("description") or ""), "the change")
print(f"    live on the gateway {1000 * (time.monotonic() - t0):.0f} ms after the webhook")
wait(lambda: status()["revision"] == head, "the status")
s = status()
print(f"    /status: prod {s['health']} at {s['revision'][:12]}, last result {s['last_result']['outcome']} "
      f"({s['last_result']['counts']['update']} updated, {s['last_result']['counts']['unchanged']} unchanged)")
print("==> The scheduled backup commits the live gateway to the same repository (outside envs/prod):")
wait(lambda: (status().get("backup") or {}).get("last", {}).get("outcome") == "committed", "the first backup")
print("    " + "\n    ".join(subprocess.run(["git", "log", "--format=%h %s", "main"], cwd=os.path.join(g, "config.git"),
                                          capture_output=True, text=True).stdout.strip().splitlines()))
m = d.get("/metrics").text
print("==> A few of /metrics:")
for line in m.splitlines():
    if line.startswith(("mcp_gitops_reconcile_total", "mcp_gitops_drift_entities", "mcp_gitops_backups_total",
                        "mcp_gitops_webhook_requests_total")):
        print("    " + line)
PY
echo "==> Export and import through the daemon's HTTP API (the token is the operator's, in DEMO_UI_TOKEN):"
API="http://$(sed -n 's/.*listening on \([0-9.:]*\);.*/\1/p' "$G/daemon.log" | head -1)"
mkdir -p "$DIR/api"
echo "    API=$API"
cd "$ROOT"
SHOW() { "$ROOT/.venv/bin/python" "$HERE/api_show.py" "$@"; }
run() { # a command line: printed as it is (variables unexpanded, so no token), then run
  printf '    $ %s\n' "$1"
  eval "$1"
}
run 'curl -fsS -H "Authorization: Bearer $DEMO_UI_TOKEN" "$API/api/v1/gateways/origin/export" -o .run/demo/api/export.json'
SHOW counts .run/demo/api/export.json
SHOW edit .run/demo/api/export.json .run/demo/api/edited.json
echo "    (.run/demo/api/edited.json: the same document with weather-current's description changed)"
run 'curl -fsS -H "Authorization: Bearer $DEMO_UI_TOKEN" -F conflict_strategy=update -F file=@.run/demo/api/edited.json "$API/api/v1/gateways/origin/import/preview" -o .run/demo/api/preview.json'
SHOW preview .run/demo/api/preview.json
run 'JOB=$(curl -fsS -H "Authorization: Bearer $DEMO_UI_TOKEN" -F conflict_strategy=update -F file=@.run/demo/api/edited.json "$API/api/v1/gateways/origin/import" | SHOW job_id)'
run 'curl -fsSN --max-time 120 -H "Authorization: Bearer $DEMO_UI_TOKEN" "$API/api/v1/jobs/$JOB/events" | grep -A1 "^event: done" | cut -c1-150'
run 'curl -fsS -H "Authorization: Bearer $DEMO_UI_TOKEN" "$API/api/v1/jobs/$JOB" -o .run/demo/api/job.json'
SHOW job .run/demo/api/job.json
run 'curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/v1/tools?limit=0" | SHOW live weather-current'
echo "==> The web UI (log in at the daemon's address + /ui with the token in DEMO_UI_TOKEN); screenshots of its pages:"
mkdir -p "$DIR/ui"
"$ROOT/.venv/bin/python" "$ROOT/tests/browser/demo_screenshots.py" "$G/daemon.log" "$DIR/ui" "$DEMO_UI_TOKEN" \
  /ui /ui/env/prod/plan /ui/env/prod/export /ui/import /ui/env/prod/import /ui/jobs /ui/backups
echo "    saved under .run/demo/ui/ ($(ls "$DIR/ui" | wc -l) PNG files, desktop and phone size)"
kill -TERM $DPID
wait $DPID || true
echo "==> The daemon's log (SIGTERM: it finishes what is in flight, saves its state, stops):"
sed 's/^/    /' "$G/daemon.log"
echo
echo "Backup written to .run/demo/backup.json, environment in .run/demo/envs/prod, repository in"
echo ".run/demo/git/config.git; the daemon and both gateways are stopped now."
