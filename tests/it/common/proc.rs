//! A long-running `mcp-gitops` process (`watch`, `run`) whose standard error is collected line
//! by line, waited on by content, and stopped with SIGTERM; killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Logged {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    /// Start `cmd` with standard error collected.
    pub fn spawn(mut cmd: Command) -> Logged {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mcp-gitops");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Logged { child, log }
    }

    /// `mcp-gitops ARGS` with only PATH in its environment (add what it needs). The binary is
    /// the one cargo built for these tests, or `MCP_GITOPS_BIN` when set (the benchmarks run
    /// the release binary so).
    pub fn command(args: &[&str]) -> Command {
        let bin = std::env::var_os("MCP_GITOPS_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| assert_cmd::cargo::cargo_bin!("mcp-gitops").to_path_buf());
        let mut c = Command::new(bin);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        c
    }

    pub fn text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Line `n` (1-based, as `wait_log` returns it).
    pub fn line(&self, n: usize) -> String {
        self.log.lock().unwrap()[n - 1].clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait until a line after the first `from` contains `needle`; its number (1-based).
    pub fn wait_log(&mut self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            {
                let log = self.log.lock().unwrap();
                if let Some(i) = log.iter().skip(from).position(|l| l.contains(needle)) {
                    return from + i + 1;
                }
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("exited ({s}) before logging {needle:?}:\n{}", self.text());
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait (up to 90 s) for the process to exit by itself: its exit code and the whole log.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the reader thread drain.
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.text())
    }

    /// SIGTERM, then the exit code and the whole log.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the reader thread drain.
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.text())
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

impl Logged {
    /// SIGKILL (`kill -9`), and wait until it is gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}
