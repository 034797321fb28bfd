//! Real headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`,
//! installed by `make test` through `tests/browser/install.sh`). A missing browser fails the
//! test. Screenshots go to `target/ui-screenshots/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Desktop and phone window sizes every page is looked at in.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

/// A chromedriver process and a browser session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    pub downloads: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run tests/browser/install.sh (make test does)");
}

/// Where screenshots are kept.
pub fn screenshot_dir() -> PathBuf {
    let d = super::root().join("target/ui-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

impl Browser {
    /// Start chromedriver (ready once its `/status` says so) and a fresh Chromium profile.
    pub async fn start() -> Browser {
        let chromium = which("chromium");
        let port = free_port();
        let driver = Command::new(which("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Drop stops the browsers it started with it.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                    "safebrowsing.enabled": false,
                },
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&base)
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            client,
            driver,
            _profile: profile,
            downloads,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element `css` selects (waiting for it up to 20 s).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css} ({e}) at {}:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits (up to 20 s) until the page's URL ends with `suffix`: a click that submits a
    /// form returns before the browser has navigated.
    pub async fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page is {url}, not *{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Screenshots of the page at both sizes: `target/ui-screenshots/NAME-{desktop,phone}.png`
    /// (and copies in `also` when given). The window ends at desktop size.
    pub async fn screenshots(&self, name: &str, also: Option<&Path>) {
        for (label, (w, h)) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.client.set_window_size(w, h).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
            let file = format!("{name}-{label}.png");
            std::fs::write(screenshot_dir().join(&file), &png).unwrap();
            if let Some(d) = also {
                std::fs::write(d.join(&file), &png).unwrap();
            }
        }
    }

    /// The browser's console messages since the last call.
    pub async fn console(&self) -> Vec<String> {
        let v = self.client.issue_cmd(BrowserLog).await.unwrap();
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A file Chromium downloaded (waiting until it is complete), by a name prefix.
    pub async fn download(&self, prefix: &str) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with(prefix) && !n.ends_with(".crdownload")
                });
            if let Some(p) = done {
                return p;
            }
            assert!(Instant::now() < deadline, "no download named {prefix}*");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every page a test looked at, for the canary check at the end.
#[derive(Default)]
pub struct Seen(pub Vec<(String, String)>);

impl Seen {
    pub async fn add(&mut self, b: &Browser) {
        self.0.push((b.url().await, b.source().await));
    }
}

/// Log in to the UI at `base` with `token`.
/// Logs in with `token` and waits for the redirect to the environments page, so that the
/// caller's next navigation cannot race the login's.
pub async fn log_in(b: &Browser, base: &str, token: &str) {
    submit_login(b, base, token).await;
    b.wait_url("/ui").await;
    b.find("form[action='/ui/logout']").await;
}

/// Submits the login form with `token` (which may be refused) and returns at once.
pub async fn submit_login(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/ui/login")).await;
    b.find("#token").await.send_keys(token).await.unwrap();
    b.find("form[action='/ui/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

pub async fn click(b: &Browser, css: &str) {
    b.find(css).await.click().await.unwrap();
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it launched.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
