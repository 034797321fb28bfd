//! The objects, one global resourceVersion, the history of changes (for watches from a
//! resourceVersion) and the write rules: create, replace, patch, apply, delete with finalizers,
//! the status subresource and generations, owner-reference garbage collection.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::apply::Managers;

mod write;
use super::resources::{self, Resource};
use super::select::Selector;

/// (group, plural, namespace or "", name).
pub type Key = (String, String, String, String);

/// One change, as watches see it (`previous` lets a selector watch turn a MODIFIED that enters
/// or leaves the selection into ADDED or DELETED).
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
    pub previous: Option<Value>,
}

/// An API error, rendered as a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    fn not_found(res: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{}.{} \"{name}\" not found", res.plural, res.group),
        )
    }

    pub fn status(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// Who a write's fields belong to.
pub enum Owner {
    /// A create, update or patch by this field manager.
    Update(String),
    /// The ownership an apply computed.
    Apply(Managers),
}

pub struct Store {
    pub resources: Vec<Resource>,
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    managers: HashMap<Key, Managers>,
    history: Vec<Event>,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
    pub tx: broadcast::Sender<Event>,
}

pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn key(res: &Resource, ns: &str, name: &str) -> Key {
    (
        res.group.clone(),
        res.plural.clone(),
        ns.into(),
        name.into(),
    )
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

/// Everything but metadata and status: what `metadata.generation` counts changes of.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn without_volatile(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    v
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Store {
    pub fn new() -> Store {
        Store {
            resources: resources::builtins(),
            rv: 0,
            uids: 0,
            objects: BTreeMap::new(),
            managers: HashMap::new(),
            history: Vec::new(),
            compacted: 0,
            tx: broadcast::channel(4096).0,
        }
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    fn register(&mut self, crd: &Value) -> Result<()> {
        let new = resources::from_crd(crd).map_err(ApiError::bad)?;
        for r in new {
            self.resources.retain(|o| {
                !(o.group == r.group && o.version == r.version && o.plural == r.plural)
            });
            self.resources.push(r);
        }
        Ok(())
    }

    /// Forget the history: watches from an older resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// The stored object, as `res`'s version shows it.
    fn render(res: &Resource, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(res.api_version());
        o["kind"] = json!(res.kind);
        o
    }

    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> Result<Value> {
        self.objects
            .get(&key(res, ns, name))
            .map(|o| Self::render(res, o))
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Every object of `res` (in `ns`, or in all namespaces) that `sel` selects.
    pub fn select(&self, res: &Resource, ns: Option<&str>, sel: &Selector) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), o)| {
                *g == res.group && *p == res.plural && ns.is_none_or(|ns| ns == n) && sel.matches(o)
            })
            .map(|(_, o)| Self::render(res, o))
            .collect()
    }

    pub fn list(&self, res: &Resource, ns: Option<&str>, sel: &Selector) -> Value {
        json!({
            "kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": self.select(res, ns, sel),
        })
    }

    /// The changes to `res` after `from` (None: the current objects as ADDED), and a receiver
    /// for what follows, subscribed under the same lock so nothing falls between.
    pub fn watch(
        &self,
        res: &Resource,
        from: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>, u64)> {
        let rx = self.tx.subscribe();
        let events = match from {
            Some(from) if from > 0 => {
                if from < self.compacted {
                    return Err(ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {from} ({})", self.compacted),
                    ));
                }
                self.history
                    .iter()
                    .filter(|e| e.rv > from && e.group == res.group && e.plural == res.plural)
                    .cloned()
                    .collect()
            }
            _ => self
                .objects
                .iter()
                .filter(|((g, p, _, _), _)| *g == res.group && *p == res.plural)
                .map(|((g, p, n, _), o)| Event {
                    rv: self.rv,
                    group: g.clone(),
                    plural: p.clone(),
                    namespace: n.clone(),
                    kind: "ADDED",
                    object: o.clone(),
                    previous: None,
                })
                .collect(),
        };
        Ok((events, rx, self.rv))
    }

    /// Store `obj` (or remove it when it is being deleted and no finalizer is left) with a new
    /// resourceVersion, record the change, and return what the client gets back.
    fn commit(&mut self, res: &Resource, k: Key, mut obj: Value, old: Option<Value>) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let released = obj["metadata"]["deletionTimestamp"].is_string()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
        let kind = if released {
            self.objects.remove(&k);
            self.managers.remove(&k);
            "DELETED"
        } else {
            self.objects.insert(k.clone(), obj.clone());
            if old.is_some() { "MODIFIED" } else { "ADDED" }
        };
        let ev = Event {
            rv: self.rv,
            group: k.0,
            plural: k.1,
            namespace: k.2,
            kind,
            object: obj.clone(),
            previous: old,
        };
        self.history.push(ev.clone());
        let _ = self.tx.send(ev);
        if released {
            self.collect_garbage();
        }
        Self::render(res, &obj)
    }

    /// Background cascading deletion: objects all of whose owners are gone are deleted.
    fn collect_garbage(&mut self) {
        let uids: std::collections::HashSet<String> = self
            .objects
            .values()
            .map(|o| meta_str(o, "uid").to_string())
            .collect();
        let orphans: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| {
                        !refs.is_empty()
                            && refs
                                .iter()
                                .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in orphans {
            let res = self
                .resources
                .iter()
                .find(|r| r.group == k.0 && r.plural == k.1)
                .cloned();
            if let Some(res) = res {
                let _ = self.delete(&res, &k.2, &k.3, &Value::Null);
            }
        }
    }

    /// The raw stored object (tests' direct view; not logged as a request).
    pub fn raw(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(group.into(), plural.into(), ns.into(), name.into()))
            .cloned()
    }

    /// Objects of a group and plural in a namespace (tests' direct view).
    pub fn raw_all(&self, group: &str, plural: &str, ns: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| g == group && p == plural && n == ns)
            .map(|(_, o)| o.clone())
            .collect()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// What a watch with `sel` shows of `ev`: None when neither side of it is selected; a MODIFIED
/// entering the selection is ADDED, one leaving it DELETED.
pub fn visible(ev: &Event, sel: &Selector) -> Option<(&'static str, Value)> {
    let now = sel.matches(&ev.object);
    let before = ev.previous.as_ref().is_some_and(|p| sel.matches(p));
    let kind = match (ev.kind, before, now) {
        ("MODIFIED", true, true) => "MODIFIED",
        ("MODIFIED", false, true) => "ADDED",
        ("MODIFIED", true, false) => "DELETED",
        ("ADDED", _, true) => "ADDED",
        ("DELETED", _, true) => "DELETED",
        ("DELETED", true, false) => "DELETED",
        _ => return None,
    };
    Some((kind, ev.object.clone()))
}
