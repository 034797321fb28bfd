//! The example Kubernetes setup under `examples/k8s/`, checked offline: every custom resource
//! against the committed CRDs' `openAPIV3Schema` (in-process, with unknown fields refused as
//! `kubectl apply --validate=strict` refuses them), every built-in object with
//! `kubernetes-validate --strict`, every Secret, ConfigMap and resource a custom resource names
//! present in the examples, and deliberately broken resources (`tests/k8s/broken/`) refused. The
//! CRDs' CEL rules are not evaluated here (no API server); the CRD tests of the controller do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::k8s::{Tools, chart, objects};
use crate::common::root;

const GROUP: &str = "gitops.mcp-gitops.dev";

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

fn load(files: &[PathBuf]) -> Vec<(String, Value)> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            objects(&text).into_iter().map(move |o| (name.clone(), o))
        })
        .collect()
}

/// An OpenAPI v3 structural schema made a strict JSON Schema: `nullable` allows null, an object
/// with declared properties refuses unknown ones unless it preserves unknown fields, and
/// int-or-string accepts either.
fn strict(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        let v = match k.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, s)| (name.clone(), strict(s)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => strict(v),
            "allOf" | "anyOf" | "oneOf" => {
                Value::Array(v.as_array().unwrap().iter().map(strict).collect())
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserve {
        out.insert("additionalProperties".into(), json!(false));
    }
    if map.get("x-kubernetes-int-or-string") == Some(&json!(true)) && !map.contains_key("type") {
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if map.get("nullable") == Some(&json!(true))
        && let Some(Value::String(t)) = map.get("type")
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    out.remove("nullable");
    Value::Object(out)
}

/// The committed CRDs: (apiVersion, kind) → a strict validator for each served version.
struct Crds {
    validators: BTreeMap<(String, String), jsonschema::Validator>,
}

impl Crds {
    fn load() -> Crds {
        let mut validators = BTreeMap::new();
        for (file, crd) in load(&yaml_files(&root().join("crds"))) {
            assert_eq!(crd["kind"], "CustomResourceDefinition", "{file}");
            let spec = &crd["spec"];
            assert_eq!(spec["group"], GROUP, "{file}");
            assert_eq!(spec["scope"], "Namespaced", "{file}");
            let kind = spec["names"]["kind"].as_str().unwrap().to_owned();
            for version in spec["versions"].as_array().unwrap() {
                if version["served"] != true {
                    continue;
                }
                let mut schema = strict(&version["schema"]["openAPIV3Schema"]);
                // The API server adds these to every root schema.
                let props = schema["properties"]
                    .as_object_mut()
                    .expect("root properties");
                props.insert("apiVersion".into(), json!({"type": "string"}));
                props.insert("kind".into(), json!({"type": "string"}));
                props.insert("metadata".into(), json!({"type": "object"}));
                let api_version = format!("{GROUP}/{}", version["name"].as_str().unwrap());
                let v = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("{file}: the schema does not compile: {e}"));
                validators.insert((api_version, kind.clone()), v);
            }
        }
        assert_eq!(validators.len(), 3, "three kinds: {:?}", validators.keys());
        Crds { validators }
    }

    /// Every schema error, as "pointer: message"; a kind without a CRD is an error too.
    fn errors(&self, obj: &Value) -> Vec<String> {
        let key = (
            obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
            obj["kind"].as_str().unwrap_or_default().to_owned(),
        );
        let Some(v) = self.validators.get(&key) else {
            return vec![format!("no CRD serves {key:?}")];
        };
        let mut errs: Vec<String> = v
            .iter_errors(obj)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            errs.push("/metadata/name: missing".into());
        }
        errs
    }
}

fn is_ours(obj: &Value) -> bool {
    obj["apiVersion"]
        .as_str()
        .is_some_and(|a| a.starts_with(&format!("{GROUP}/")))
}

#[test]
fn every_example_resource_matches_its_crd() {
    let crds = Crds::load();
    let objs = load(&yaml_files(&root().join("examples/k8s")));
    let mut seen = BTreeSet::new();
    for (file, obj) in objs.iter().filter(|(_, o)| is_ours(o)) {
        let errs = crds.errors(obj);
        assert!(
            errs.is_empty(),
            "{file}: {} {}:\n{}",
            obj["kind"],
            obj["metadata"]["name"],
            errs.join("\n")
        );
        seen.insert(obj["kind"].as_str().unwrap().to_owned());
    }
    // A realistic setup: one gateway, a dev and a prod config, a backup.
    assert_eq!(
        seen,
        BTreeSet::from(["ContextForgeGateway", "GatewayBackup", "GatewayConfig"].map(String::from))
    );
    let configs: Vec<_> = objs
        .iter()
        .filter(|(_, o)| o["kind"] == "GatewayConfig")
        .collect();
    assert_eq!(configs.len(), 2);
    let sources: BTreeSet<&str> = configs
        .iter()
        .flat_map(|(_, c)| c["spec"]["sources"].as_array().unwrap())
        .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert_eq!(sources, BTreeSet::from(["configMap", "git", "inline"]));
}

#[test]
fn the_broken_resources_are_refused() {
    let crds = Crds::load();
    // file → the pointer (and word) the refusal must name.
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("mode-unknown.yaml", &["/spec/mode", "sync"][..]),
        ("no-gateway-ref.yaml", &["gatewayRef"][..]),
        ("plaintext-token.yaml", &["/spec/auth", "token"][..]),
        ("schedule-number.yaml", &["/spec/schedule", "/spec/git"][..]),
    ]);
    let objs = load(&yaml_files(&root().join("tests/k8s/broken")));
    let files: BTreeSet<&str> = objs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, expected.keys().copied().collect());
    for (file, obj) in &objs {
        let errs = crds.errors(obj).join("\n");
        assert!(!errs.is_empty(), "{file} was accepted");
        for needle in expected[file.as_str()] {
            assert!(
                errs.contains(needle),
                "{file}: {needle} not named in:\n{errs}"
            );
        }
    }
}

#[test]
fn example_builtin_objects_and_the_crds_pass_kubernetes_validate() {
    let tools = Tools::new();
    let objs = load(&yaml_files(&root().join("examples/k8s")));
    let builtin: Vec<String> = objs
        .iter()
        .filter(|(_, o)| !is_ours(o))
        .map(|(_, o)| serde_json::to_string(o).unwrap())
        .collect();
    assert!(
        builtin.len() >= 5,
        "the Secrets and ConfigMaps: {}",
        builtin.len()
    );
    tools.assert_valid(
        "the examples' Secrets and ConfigMaps",
        &builtin.join("\n---\n"),
    );
    for f in yaml_files(&root().join("crds")) {
        let run = tools.validate(&[&f]);
        assert!(run.ok, "{}: {}{}", f.display(), run.stdout, run.stderr);
        assert!(
            run.stdout.contains("passed"),
            "{}: not validated: {}{}",
            f.display(),
            run.stdout,
            run.stderr
        );
    }
}

/// The name of every Secret (with the key, when one is named) a value refers to.
fn secret_refs(v: &Value, out: &mut Vec<(String, Option<String>)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if (k.ends_with("SecretRef") || k == "secretKeyRef" || k == "secretRef")
                    && x.is_object()
                {
                    let name = x["name"].as_str().unwrap().to_owned();
                    out.push((name, x["key"].as_str().map(str::to_owned)));
                } else {
                    secret_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| secret_refs(x, out)),
        _ => {}
    }
}

fn keys_of(obj: &Value) -> BTreeSet<String> {
    ["data", "stringData"]
        .iter()
        .filter_map(|f| obj[f].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// A referenced Secret or ConfigMap carries the label the controller watches by, so that a
/// rotated token or an edited document reconciles at once.
fn assert_watched(obj: &Value) {
    // The controller's `WATCH_LABEL` (src/k8s/controller/run.rs).
    let label = &obj["metadata"]["labels"]["gitops.mcp-gitops.dev/watch"];
    assert_eq!(
        label, "true",
        "{} {} is not watched",
        obj["kind"], obj["metadata"]["name"]
    );
}

#[test]
fn every_reference_in_the_examples_resolves() {
    let objs: Vec<Value> = load(&yaml_files(&root().join("examples/k8s")))
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    let named = |kind: &str, name: &str| {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the examples reference a {kind} {name} they do not define"))
    };
    for obj in objs.iter().filter(|o| is_ours(o)) {
        let mut refs = Vec::new();
        secret_refs(&obj["spec"], &mut refs);
        for (name, key) in refs {
            let secret = named("Secret", &name);
            assert_watched(secret);
            if let Some(key) = key {
                assert!(
                    keys_of(secret).contains(&key),
                    "Secret {name} has no key {key}"
                );
            }
        }
        if let Some(gw) = obj["spec"]["gatewayRef"]["name"].as_str() {
            named("ContextForgeGateway", gw);
        }
        for dep in obj["spec"]["dependsOn"].as_array().into_iter().flatten() {
            named("GatewayConfig", dep["name"].as_str().unwrap());
        }
        for src in obj["spec"]["sources"].as_array().into_iter().flatten() {
            if let Some(cm) = src["configMap"]["name"].as_str() {
                let cm = named("ConfigMap", cm);
                assert_watched(cm);
                for key in src["configMap"]["keys"].as_array().into_iter().flatten() {
                    assert!(keys_of(cm).contains(key.as_str().unwrap()), "{key} missing");
                }
            }
        }
    }
    // Placeholders only: every Secret value says so.
    for s in objs.iter().filter(|o| o["kind"] == "Secret") {
        for (k, v) in s["stringData"].as_object().unwrap() {
            let v = v.as_str().unwrap();
            assert!(
                v.contains("PLACEHOLDER") || k == "username",
                "{}: {k} is not marked as a placeholder",
                s["metadata"]["name"]
            );
        }
        assert!(
            s.get("data").is_none(),
            "base64 data hides whether a value is a placeholder"
        );
    }
}

#[test]
fn the_chart_ships_the_committed_crds() {
    // One source: the chart's crds/ is a link to the top-level crds/, and what helm installs
    // (`--include-crds`) is exactly the committed files.
    let link = chart().join("crds");
    let target = std::fs::read_link(&link).expect("charts/mcp-gitops/crds is a symlink");
    assert_eq!(target, Path::new("../../crds"));
    let tools = Tools::new();
    let rendered = tools.template(&[], &["--include-crds"]).unwrap();
    let mut from_chart: Vec<Value> = objects(&rendered)
        .into_iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    let mut committed: Vec<Value> = load(&yaml_files(&root().join("crds")))
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    let by_name = |o: &Value| o["metadata"]["name"].as_str().unwrap().to_owned();
    from_chart.sort_by_key(by_name);
    committed.sort_by_key(by_name);
    assert_eq!(from_chart.len(), 3);
    assert_eq!(from_chart, committed);
}

/// A GatewayConfig example's ConfigMap and inline sources as the engine's layers (Git sources
/// live in a repository, not in the examples).
fn example_layers(cfg: &Value, objs: &[Value]) -> Vec<mcp_gitops::engine::layers::Layer> {
    let mut layers = Vec::new();
    for src in cfg["spec"]["sources"].as_array().unwrap() {
        if let Some(name) = src["configMap"]["name"].as_str() {
            let cm = objs
                .iter()
                .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
                .unwrap();
            let data = cm["data"].as_object().unwrap();
            let keys: Vec<String> = match src["configMap"]["keys"].as_array() {
                Some(k) => k.iter().map(|k| k.as_str().unwrap().to_owned()).collect(),
                None => data.keys().cloned().collect(),
            };
            let files = keys
                .into_iter()
                .map(|k| {
                    let text = data[&k].as_str().unwrap().to_owned();
                    (k, text)
                })
                .collect();
            layers.push(mcp_gitops::engine::layers::Layer {
                label: format!("configmap-{name}"),
                files,
                shown: None,
            });
        } else if let Some(doc) = src["inline"].as_object() {
            let name = doc["name"].as_str().unwrap();
            layers.push(mcp_gitops::engine::layers::Layer {
                label: format!("inline-{name}"),
                files: vec![(
                    format!("{name}.yaml"),
                    doc["document"].as_str().unwrap().to_owned(),
                )],
                shown: None,
            });
        }
    }
    layers
}

fn load_layers(
    cfg: &Value,
    layers: &[mcp_gitops::engine::layers::Layer],
) -> Result<mcp_gitops::engine::environment::Environment, String> {
    use mcp_gitops::k8s::{controller::config::env_config, crd::GatewayConfig};
    let typed: GatewayConfig = serde_json::from_value(cfg.clone())
        .unwrap_or_else(|e| panic!("{}: not a GatewayConfig: {e}", cfg["metadata"]["name"]));
    let dir = tempfile::tempdir().unwrap();
    mcp_gitops::engine::layers::load(dir.path(), layers, env_config(&typed))
        .map_err(|e| e.to_string())
}

#[test]
fn example_documents_load_as_the_controller_layers_them() {
    let objs: Vec<Value> = load(&yaml_files(&root().join("examples/k8s")))
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    let mut total = 0;
    for cfg in objs.iter().filter(|o| o["kind"] == "GatewayConfig") {
        let layers = example_layers(cfg, &objs);
        assert!(!layers.is_empty());
        let env = load_layers(cfg, &layers)
            .unwrap_or_else(|e| panic!("{}: {e}", cfg["metadata"]["name"]));
        total += env.document.entities.total();
    }
    // dev: 3 tools, 1 prompt, 1 server; prod (without its Git documents): 1 server.
    assert_eq!(total, 6);

    // The check can fail: a tool without its URL is refused, naming the layer and the field.
    let dev = objs
        .iter()
        .find(|o| o["kind"] == "GatewayConfig" && o["metadata"]["name"] == "dev")
        .unwrap();
    let mut layers = example_layers(dev, &objs);
    layers.push(mcp_gitops::engine::layers::Layer {
        label: "inline-bad".into(),
        files: vec![(
            "bad.yaml".into(),
            "version: \"2025-03-26\"\nentities:\n  tools:\n    - name: no-url\n      request_type: GET\n"
                .into(),
        )],
        shown: None,
    });
    let err = load_layers(dev, &layers).expect_err("a tool without a URL was accepted");
    assert!(err.contains("inline-bad") && err.contains("url"), "{err}");
}
