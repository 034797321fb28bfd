//! The export page in real headless Chromium against `mcp-gitops run` and a real gateway
//! holding the seed scenario: "Export Selected" of a server previews the tools, resources and
//! prompts it would add, and "Download" saves them with the server (or the server alone when
//! they are left out), as the gateway holds them; "Export All Configuration" asks with the
//! counts, then says "Exported N total items across M categories" with the numbers of the file
//! it downloads, which are the gateway's; a root with an odd URI exports exactly itself. Failed logins are limited per client address. No credential on any page or in any
//! file; screenshots of the preview and the result pages.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::browser::{Browser, Seen, click, log_in};
use crate::common::{Gateway, seed};
use crate::daemon::{Daemon, ENV_CONFIG, tool_doc};
use serde_json::{Value, json};

const OPERATOR: &str = "ui-export-operator-token-0123456789";

async fn list(gw: &Gateway, path: &str) -> Vec<Value> {
    gw.get(path).await.as_array().unwrap().clone()
}

fn names(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|e| e[field].as_str().unwrap().to_string())
        .collect()
}

/// The `entities.KIND` of a downloaded document (none: empty).
fn kind(doc: &Value, kind: &str) -> Vec<Value> {
    doc["entities"][kind]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The downloaded file (then removed, so that the next download is told apart) and its text.
async fn downloaded(b: &Browser) -> (PathBuf, String, Value) {
    let file = b.download("export-").await;
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.len() == "export-YYYYMMDD-HHMMSS.json".len() && name.ends_with(".json"),
        "{name}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let doc = serde_json::from_str(&text).unwrap();
    (file, text, doc)
}

/// The `data-key`s of the list `css` on the page.
async fn keys(b: &Browser, css: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for li in b
        .client
        .find_all(fantoccini::Locator::Css(&format!("{css} li")))
        .await
        .unwrap()
    {
        out.insert(li.attr("data-key").await.unwrap().unwrap());
    }
    out
}

/// An id as text (the gateway answers some as numbers, some as strings).
fn id_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The `type:key`s of what server `server` uses, as the gateway tells them.
async fn dependencies_of(gw: &Gateway, server: &Value) -> BTreeSet<String> {
    let resources = list(gw, "/v1/resources?limit=0").await;
    let prompts = list(gw, "/v1/prompts?limit=0").await;
    let by_id = |items: &[Value], id: &Value, field: &str| {
        let hit = items.iter().find(|e| id_text(&e["id"]) == id_text(id));
        hit.unwrap_or_else(|| panic!("no entity {id}"))[field]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut out = BTreeSet::new();
    for t in server["associatedTools"].as_array().unwrap() {
        out.insert(format!("tools:{}", t.as_str().unwrap()));
    }
    for r in server["associatedResources"].as_array().unwrap() {
        out.insert(format!("resources:{}", by_id(&resources, r, "uri")));
    }
    for p in server["associatedPrompts"].as_array().unwrap() {
        out.insert(format!("prompts:{}", by_id(&prompts, p, "name")));
    }
    out
}

/// Wait for the confirmation the page asks, say what it asked, and confirm.
async fn confirmed(b: &Browser, css: &str) -> String {
    click(b, css).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = b.client.get_alert_text().await {
            b.client.accept_alert().await.unwrap();
            return text;
        }
        assert!(Instant::now() < deadline, "no confirmation asked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Select `values` on the export page and preview them.
async fn preview(b: &Browser, base: &str, values: &[&str]) {
    b.goto(&format!("{base}/ui/env/obs/export")).await;
    for v in values {
        click(b, &format!("input[name=entity][value=\"{v}\"]")).await;
    }
    click(b, "#export-selected").await;
    b.wait_url("/ui/env/obs/export/preview").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_a_selection_with_its_dependencies_download_it_exactly_and_export_all_with_counts()
{
    let gw = Gateway::start();
    seed::seed(&gw).await;
    let root = gw.dir.path();
    let obs = root.join("envs/obs");
    std::fs::create_dir_all(&obs).unwrap();
    std::fs::write(obs.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(obs.join("tools.yaml"), tool_doc("obs-own", "own", "GET")).unwrap();
    let config = root.join("daemon.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\nenvironments:\n  - {name: obs, source: {dir: envs/obs}, interval: 1h, mode: observe}\n",
    )
    .unwrap();
    let d = Daemon::start_with(&gw, &config, &[("UI_OPERATOR_TOKEN", OPERATOR)]);
    d.wait_ready().await;
    let base = d.url("");
    let b = Browser::start().await;
    let mut seen = Seen::default();
    log_in(&b, &base, OPERATOR).await;
    b.wait_url("/ui").await;

    // A server whose tools are not selected: the preview lists what it would add.
    let servers = list(&gw, "/v1/servers?limit=0").await;
    let server = servers.iter().find(|s| s["name"] == "server-1").unwrap();
    let needs = dependencies_of(&gw, server).await;
    assert!(needs.iter().any(|k| k.starts_with("tools:")), "{needs:?}");
    preview(&b, &base, &["servers:server-1"]).await;
    assert_eq!(
        keys(&b, "#selected").await,
        ["servers:server-1".to_string()].into()
    );
    assert_eq!(keys(&b, "#dependencies").await, needs);
    assert!(
        b.find("#include-dependencies")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    seen.add(&b).await;
    b.screenshots("export-preview", None).await;

    // Download: the server and what it uses, as the gateway holds them.
    click(&b, "#download-selected").await;
    let (_, text, doc) = downloaded(&b).await;
    assert_eq!(
        names(&kind(&doc, "servers"), "name"),
        ["server-1".to_string()].into()
    );
    let mut got = BTreeSet::new();
    for (k, field) in [("tools", "name"), ("resources", "uri"), ("prompts", "name")] {
        for n in names(&kind(&doc, k), field) {
            got.insert(format!("{k}:{n}"));
        }
    }
    assert_eq!(got, needs, "{doc:#}");
    let live_tools = list(&gw, "/v1/tools?limit=0").await;
    for t in kind(&doc, "tools") {
        let live = live_tools.iter().find(|l| l["name"] == t["name"]).unwrap();
        assert_eq!(t["description"], live["description"], "{}", t["name"]);
        assert_eq!(t["url"], live["url"], "{}", t["name"]);
    }
    assert!(kind(&doc, "gateways").is_empty() && kind(&doc, "roots").is_empty());
    assert!(!text.contains(seed::CANARY), "a plaintext credential");

    // The dependencies left out: the server alone.
    preview(&b, &base, &["servers:server-1"]).await;
    click(&b, "#include-dependencies").await;
    assert!(
        !b.find("#include-dependencies")
            .await
            .is_selected()
            .await
            .unwrap()
    );
    click(&b, "#download-selected").await;
    let (_, _, doc) = downloaded(&b).await;
    assert_eq!(
        names(&kind(&doc, "servers"), "name"),
        ["server-1".to_string()].into()
    );
    for k in ["tools", "resources", "prompts", "gateways", "roots"] {
        assert!(kind(&doc, k).is_empty(), "{k}: {doc:#}");
    }

    // Export All: asked with the counts, then told the numbers of the very file downloaded,
    // which are the gateway's.
    b.goto(&format!("{base}/ui/env/obs/export")).await;
    let asked = confirmed(&b, "#export-all").await;
    assert!(
        asked.contains("49 total items across 6 categories"),
        "{asked}"
    );
    b.wait_url("/ui/env/obs/export/all").await;
    let said = b.text("#export-result").await;
    let (_, text, doc) = downloaded(&b).await;
    assert!(!text.contains(seed::CANARY), "a plaintext credential");
    let counts: Vec<(&str, usize)> = [
        "tools",
        "gateways",
        "servers",
        "prompts",
        "resources",
        "roots",
    ]
    .iter()
    .map(|k| (*k, kind(&doc, k).len()))
    .collect();
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let categories = counts.iter().filter(|(_, n)| *n > 0).count();
    let listed = counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        said,
        format!("Exported {total} total items across {categories} categories ({listed}).")
    );
    assert_eq!(
        said,
        "Exported 49 total items across 6 categories (15 tools, 3 gateways, 5 servers, 12 prompts, 8 resources, 6 roots)."
    );
    let local_tools = live_tools
        .iter()
        .filter(|t| t["integrationType"] != "MCP")
        .count();
    for (k, live) in [
        ("tools", local_tools),
        ("gateways", list(&gw, "/v1/gateways?limit=0").await.len()),
        ("servers", servers.len()),
        ("roots", list(&gw, "/v1/roots").await.len()),
    ] {
        assert_eq!(kind(&doc, k).len(), live, "{k}");
    }
    assert!(
        b.text("#export-download")
            .await
            .starts_with("Downloaded export-"),
        "the page says it fetched the file"
    );
    seen.add(&b).await;
    b.screenshots("export-all-result", None).await;

    // A root whose URI is odd is exported alone, by its exact key. The gateway holds no key
    // with a glob character or a comma (it refuses them in names and a query in a root URI,
    // and percent-encodes `,` `*` `[` `]` in root URIs), so the one sent as `[a]` is held as
    // `%5Ba%5D`; the UI posts that very key and nothing else comes along (`file:///srv/a`).
    // Keys with `*`, `?`, `[` and `,` are exact in the unit tests of `core::select::picked`.
    for uri in ["file:///srv/[a]", "file:///srv/a"] {
        gw.post("/v1/roots", json!({"uri": uri, "name": "odd"}))
            .await;
    }
    const ODD: &str = "file:///srv/%5Ba%5D";
    let odd = names(&list(&gw, "/v1/roots").await, "uri");
    assert!(
        odd.contains(ODD) && odd.contains("file:///srv/a"),
        "{odd:?}"
    );
    preview(&b, &base, &[&format!("roots:{ODD}")]).await;
    assert_eq!(keys(&b, "#selected").await, [format!("roots:{ODD}")].into());
    b.find("#no-dependencies").await;
    seen.add(&b).await;
    click(&b, "#download-selected").await;
    let (_, _, doc) = downloaded(&b).await;
    assert_eq!(
        names(&kind(&doc, "roots"), "uri"),
        [ODD.to_string()].into(),
        "{doc:#}"
    );
    for k in ["tools", "servers", "resources", "prompts", "gateways"] {
        assert!(kind(&doc, k).is_empty(), "{k}: {doc:#}");
    }

    // No page broke its Content-Security-Policy, and no page holds a credential.
    let console = b.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:#?}"
    );
    for (url, html) in &seen.0 {
        for secret in [seed::CANARY, OPERATOR, gw.secret()] {
            assert!(!html.contains(secret), "{url} shows a secret");
        }
    }
    assert!(!d.text().contains(seed::CANARY));
}

/// A login form post from the address `from`.
async fn login_from(base: &str, from: Ipv4Addr, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_limited_per_address_and_other_addresses_still_log_in() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let obs = root.join("envs/obs");
    std::fs::create_dir_all(&obs).unwrap();
    std::fs::write(obs.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(obs.join("tools.yaml"), tool_doc("obs-own", "own", "GET")).unwrap();
    let config = root.join("daemon.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\nenvironments:\n  - {name: obs, source: {dir: envs/obs}, interval: 1h, mode: observe}\n",
    )
    .unwrap();
    let mut d = Daemon::start_with(&gw, &config, &[("UI_OPERATOR_TOKEN", OPERATOR)]);
    d.wait_ready().await;
    let base = d.url("");
    let (a, other) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
    let limit = mcp_gitops::http::ui::login::FAILURES_PER_MINUTE;
    for i in 0..limit {
        let r = login_from(&base, a, "wrong-token").await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    let r = login_from(&base, a, "wrong-token").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Too many failed logins") && page.contains("Try again in"),
        "{page}"
    );
    // Held up even with the good token, until the minute is over.
    let r = login_from(&base, a, OPERATOR).await;
    assert_eq!(r.status(), 429);
    assert!(!r.headers().contains_key("set-cookie"));
    assert!(!r.text().await.unwrap().contains(OPERATOR));
    // Another address is not held up.
    let r = login_from(&base, other, OPERATOR).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers().contains_key("set-cookie"));
    d.proc
        .wait_log(0, "too many failed logins from 127.0.0.1: refused for");
    assert!(!d.text().contains(OPERATOR));
}
