//! Offline Kubernetes tooling for the chart and example checks: the project-local helm and
//! kubernetes-validate installed by `tests/k8s/tools.sh install` (`make k8s-tools`). A missing tool
//! fails the test loudly; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::root;

/// The Kubernetes version every manifest is rendered and validated for (the oldest supported).
pub const KUBE_VERSION: &str = "1.33.0";

/// The chart's directory.
pub fn chart() -> PathBuf {
    root().join("charts/mcp-gitops")
}

/// helm and kubernetes-validate, with Helm's homes in a temporary directory.
pub struct Tools {
    helm: PathBuf,
    kv: PathBuf,
    home: tempfile::TempDir,
}

fn tool(name: &str) -> PathBuf {
    let out = Command::new(root().join("tests/k8s/tools.sh"))
        .arg(name)
        .output()
        .expect("run tests/k8s/tools.sh");
    assert!(out.status.success(), "tests/k8s/tools.sh {name} failed");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "{} is missing: run `make k8s-tools` (tests/k8s/tools.sh install)",
        path.display()
    );
    path
}

/// The outcome of one tool run.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Tools {
    pub fn new() -> Tools {
        Tools {
            helm: tool("helm"),
            kv: tool("kv"),
            home: tempfile::tempdir().expect("temp dir for helm"),
        }
    }

    /// Run helm with HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME in a temp dir.
    pub fn helm(&self, args: &[&str]) -> Run {
        let h = self.home.path();
        Command::new(&self.helm)
            .args(args)
            .env("HELM_CACHE_HOME", h.join("cache"))
            .env("HELM_CONFIG_HOME", h.join("config"))
            .env("HELM_DATA_HOME", h.join("data"))
            .current_dir(root())
            .output()
            .expect("run helm")
            .into()
    }

    /// `helm template` of the chart as release `rel` in namespace `ops`, with the values files
    /// (relative to the repository) and extra arguments; the raw YAML or helm's error.
    pub fn template(&self, values: &[&str], extra: &[&str]) -> Result<String, String> {
        let chart = chart();
        let mut args = vec![
            "template",
            "rel",
            chart.to_str().unwrap(),
            "--namespace",
            "ops",
            "--kube-version",
            KUBE_VERSION,
        ];
        for v in values {
            args.push("--values");
            args.push(v);
        }
        args.extend_from_slice(extra);
        let run = self.helm(&args);
        if run.ok {
            Ok(run.stdout)
        } else {
            Err(run.stderr)
        }
    }

    /// `kubernetes-validate --strict -k KUBE_VERSION FILE…` (flags before the file names).
    pub fn validate(&self, files: &[&Path]) -> Run {
        Command::new(&self.kv)
            .args(["--strict", "-k", KUBE_VERSION])
            .args(files)
            .output()
            .expect("run kubernetes-validate")
            .into()
    }

    /// Validate one YAML text through a temporary file; panics with the validator's output when
    /// it refuses the text.
    pub fn assert_valid(&self, what: &str, yaml: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("manifests.yaml");
        std::fs::write(&file, yaml).unwrap();
        let run = self.validate(&[&file]);
        assert!(
            run.ok,
            "kubernetes-validate refused {what}:\n{}{}",
            run.stdout, run.stderr
        );
        run
    }
}

/// The objects of a multi-document YAML stream (empty documents dropped).
pub fn objects(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("parse YAML stream");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The objects of one kind.
pub fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// The only object of one kind.
pub fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objs, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, found {}",
        found.len()
    );
    found[0]
}

/// A list of strings at a JSON pointer (empty when absent).
pub fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}
