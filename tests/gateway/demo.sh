#!/usr/bin/env bash
# `make demo`: start a local ContextForge gateway, give it a realistic configuration through its
# REST API, back it up with `mcp-gitops export`, restore the backup into a second gateway, then
# manage that gateway from an environment directory (apply, edit, plan, apply), stop both.
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
echo "Backup written to .run/demo/backup.json, environment in .run/demo/envs/prod; both gateways are stopped now."
