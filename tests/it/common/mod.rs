//! Test harness: real ContextForge gateways (and tiny MCP peers) on loopback, one per test,
//! started through `tests/gateway/cf.sh`. A gateway that cannot start fails the test loudly.
#![allow(dead_code)]

pub mod browser;
pub mod fault;
pub mod git;
pub mod k8s;
pub mod kube_api;
pub mod proc;
pub mod seed;
pub mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mcp_gitops::gateway::{Action, Auth, Client, ClientOptions, MintOptions};
use serde_json::Value;

pub const ADMIN: &str = "admin@example.com";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cf() -> PathBuf {
    root().join("tests/gateway/cf.sh")
}

/// A running gateway with its own SQLite file, stopped on drop.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub env: HashMap<String, String>,
}

impl Gateway {
    pub fn start() -> Gateway {
        Self::start_with(&[])
    }

    /// Start with extra settings (`("AUTH_ENCRYPTION_SECRET", "key-b")`, ...).
    pub fn start_with(settings: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("cf-gw-")
            .tempdir_in(run_dir())
            .expect("temp dir");
        let mut cmd = Command::new(cf());
        cmd.arg("start").arg(dir.path());
        let mut extra = Vec::new();
        for (k, v) in settings {
            match *k {
                "AUTH_ENCRYPTION_SECRET" => {
                    cmd.env("CF_AUTH_SECRET", v);
                }
                "JWT_SECRET_KEY" => {
                    cmd.env("CF_JWT_SECRET", v);
                }
                _ => extra.push(format!("{k}={v}")),
            }
        }
        cmd.env("CF_EXTRA_ENV", extra.join(" "));
        let out = cmd.output().expect("run tests/gateway/cf.sh");
        let mut gw = Gateway {
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            env: HashMap::new(),
            dir,
        };
        assert!(
            out.status.success() && gw.url.starts_with("http://"),
            "the ContextForge gateway did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        gw.env = read_env(&gw.dir.path().join("gateway.env"));
        gw
    }

    /// Stop the gateway and start it again on the same port and database (peers keep
    /// running); returns once it is healthy.
    pub fn restart(&self) {
        let out = Command::new(cf())
            .arg("restart")
            .arg(self.dir.path())
            .output()
            .expect("run tests/gateway/cf.sh restart");
        assert!(
            out.status.success(),
            "gateway did not restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn secret(&self) -> &str {
        &self.env["AUTH_ENCRYPTION_SECRET"]
    }

    pub fn jwt_secret(&self) -> &str {
        &self.env["JWT_SECRET_KEY"]
    }

    /// A tiny MCP peer server; returns its MCP URL.
    pub fn peer(&self, name: &str) -> String {
        self.peer_on(name, None)
    }

    /// A tiny MCP peer server on a given port (None: a free one); returns its MCP URL.
    pub fn peer_on(&self, name: &str, port: Option<u16>) -> String {
        let out = Command::new(cf())
            .arg("peer")
            .arg(self.dir.path())
            .arg(name)
            .args(port.map(|p| p.to_string()))
            .output()
            .expect("run cf.sh peer");
        assert!(
            out.status.success(),
            "peer {name} did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn admin_auth(&self) -> Auth {
        Auth::Mint(MintOptions {
            user: ADMIN.into(),
            jwt_secret: self.jwt_secret().into(),
            audience: "mcpgateway-api".into(),
            issuer: "mcpgateway".into(),
            ttl: std::time::Duration::from_secs(3600),
        })
    }

    /// An admin client (minted token), no client-side rate limit.
    pub fn client(&self) -> Client {
        let mut opts = ClientOptions::new(&self.url, self.admin_auth());
        opts.rate_limit = 0;
        Client::new(opts).expect("client")
    }

    pub fn token(&self) -> String {
        self.admin_auth().bearer().unwrap()
    }

    /// The names of every tool the gateway holds, sorted.
    pub async fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .get("/v1/tools?limit=0")
            .await
            .as_array()
            .expect("a list of tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.client()
            .post(path, &body, &Action::new(format!("POST {path}")))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client()
            .get(path, &Action::new(format!("GET {path}")))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `mcp-gitops` with this gateway's URL, admin user and secrets in the environment.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("mcp-gitops").unwrap();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MCP_GATEWAY_URL", &self.url)
            .env("JWT_SECRET_KEY", self.jwt_secret())
            .env("AUTH_ENCRYPTION_SECRET", self.secret())
            .current_dir(self.dir.path());
        c
    }

    /// Run Python in the gateway's venv with the gateway's settings; returns stdout.
    pub fn python(&self, code: &str, stdin: &str) -> String {
        let mut cmd = Command::new(root().join(".venv/bin/python"));
        cmd.arg("-c")
            .arg(code)
            .envs(&self.env)
            .current_dir(self.dir.path());
        run_with_stdin(&mut cmd, stdin)
    }

    /// Decrypt values with the gateway's own `decode_auth` (one JSON object per input line).
    pub fn decode_auth(&self, values: &[&str], secret: Option<&str>) -> Vec<Value> {
        let code = r#"
import sys, json
from mcpgateway.utils.services_auth import decode_auth
secret = sys.argv[1] if len(sys.argv) > 1 else None
for line in sys.stdin.read().split():
    print(json.dumps(decode_auth(line, secret=secret) if secret else decode_auth(line)))
"#;
        let mut cmd = Command::new(root().join(".venv/bin/python"));
        cmd.arg("-c").arg(code);
        if let Some(s) = secret {
            cmd.arg(s);
        }
        run_with_stdin(cmd.envs(&self.env), &values.join("\n"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new(cf()).arg("stop").arg(self.dir.path()).status();
    }
}

fn read_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .expect("gateway.env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
        .collect()
}

/// Where gateways keep their files (inside target/, git-ignored).
fn run_dir() -> PathBuf {
    let d = root().join("target/test-gateways");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The description of the tool named `name` in a tool list.
pub fn description(tools: &[Value], name: &str) -> Option<String> {
    tools
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["description"].as_str())
        .map(str::to_string)
}

/// Read a JSON file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Change tool `name`'s description on the gateway, by hand (as someone would in its admin UI).
pub async fn set_description(gw: &Gateway, name: &str, description: &str) {
    let tools = gw.get("/v1/tools?limit=0").await;
    let id = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.client()
        .put(
            &format!("/v1/tools/{id}"),
            &serde_json::json!({"description": description}),
            &Action::new("edit by hand"),
        )
        .await
        .unwrap();
}
