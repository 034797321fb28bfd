//! The kinds the fake API server serves: built-in ones and custom resources registered from CRD
//! documents; the discovery documents describing them.

use serde_json::{Value, json};

/// One served resource (one group/version/plural).
#[derive(Clone, Debug)]
pub struct Resource {
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource keep the stored status, writes
    /// to `/status` change nothing else.
    pub status: bool,
    /// Spec changes bump `metadata.generation` (custom resources; not ConfigMaps or Secrets).
    pub generation: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl Resource {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Resource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            status: false,
            generation: false,
            short_names: Vec::new(),
            categories: Vec::new(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Objects are stored once per group and plural, whatever version wrote them.
    pub fn store_key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    fn discovery(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// Secrets, ConfigMaps, Events (core/v1 and events.k8s.io/v1), Leases, Namespaces and CRDs.
pub fn builtins() -> Vec<Resource> {
    let mut crd = Resource::builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    );
    crd.status = true;
    crd.short_names = vec!["crd".into(), "crds".into()];
    vec![
        Resource::builtin("", "v1", "secrets", "Secret", true),
        Resource::builtin("", "v1", "configmaps", "ConfigMap", true),
        Resource::builtin("", "v1", "events", "Event", true),
        Resource::builtin("", "v1", "namespaces", "Namespace", false),
        Resource::builtin("events.k8s.io", "v1", "events", "Event", true),
        Resource::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        crd,
    ]
}

/// The resources a CustomResourceDefinition declares: one per served version.
pub fn from_crd(crd: &Value) -> Result<Vec<Resource>, String> {
    let spec = &crd["spec"];
    let text = |v: &Value, what: &str| -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("CRD without {what}"))
    };
    let group = text(&spec["group"], "spec.group")?;
    let plural = text(&spec["names"]["plural"], "spec.names.plural")?;
    let kind = text(&spec["names"]["kind"], "spec.names.kind")?;
    let singular = spec["names"]["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => return Err(format!("CRD {plural}.{group}: scope {other:?}")),
    };
    let versions = spec["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("CRD {plural}.{group} has no versions"))?;
    let mut out = Vec::new();
    for v in versions {
        if v["served"] == false {
            continue;
        }
        out.push(Resource {
            group: group.clone(),
            version: text(&v["name"], "a version name")?,
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            status: v["subresources"]["status"].is_object(),
            generation: true,
            short_names: strings(&spec["names"]["shortNames"]),
            categories: strings(&spec["names"]["categories"]),
        });
    }
    Ok(out)
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// `/apis`: every non-core group with its versions (the first registered is preferred).
pub fn group_list(resources: &[Resource]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => {
                versions.push(r.version.clone())
            }
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/<group>/<version>`; None when nothing is served there.
pub fn resource_list(resources: &[Resource], group: &str, version: &str) -> Option<Value> {
    let served: Vec<Value> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(Resource::discovery)
        .collect();
    if served.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": served}),
    )
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "gitCommit": "fake",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
        "compiler": "gc", "platform": "linux/amd64",
    })
}
