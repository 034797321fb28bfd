//! The write rules: create, replace, patch, server-side apply and delete (with finalizers and
//! preconditions), the status subresource and generations.

use base64::Engine;
use serde_json::{Value, json};

use super::super::apply::{self, Managers, PatchType};
use super::super::resources::Resource;
use super::{
    ApiError, Owner, Result, Store, key, meta_str, now, spec_part, valid_name, without_volatile,
};

impl Store {
    /// Checks and defaults every write shares: kind, namespace, name; Secrets' `stringData`.
    fn normalise(&self, res: &Resource, ns: &str, obj: &mut Value) -> Result<()> {
        if !obj.is_object() {
            return Err(ApiError::bad("the body is not an object"));
        }
        if let Some(kind) = obj["kind"].as_str()
            && kind != res.kind
        {
            return Err(ApiError::bad(format!("kind {kind} sent to {}", res.plural)));
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        match obj["metadata"]["namespace"].as_str() {
            Some(n) if res.namespaced && n != ns => {
                return Err(ApiError::bad(format!(
                    "the namespace of the object ({n}) does not match the namespace on the request ({ns})"
                )));
            }
            _ if res.namespaced => obj["metadata"]["namespace"] = json!(ns),
            _ => {}
        }
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        if res.group.is_empty() && res.plural == "secrets" {
            if let Some(Value::Object(sd)) = obj.as_object_mut().unwrap().remove("stringData") {
                let data = obj["data"].as_object().cloned().unwrap_or_default();
                let mut data = Value::Object(data);
                for (k, v) in sd {
                    let b64 = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    data[k] = json!(b64);
                }
                obj["data"] = data;
            }
            if obj["type"].is_null() {
                obj["type"] = json!("Opaque");
            }
        }
        Ok(())
    }

    /// Create, owned by `manager` (an update) or by the apply managers given.
    pub fn create(&mut self, res: &Resource, ns: &str, mut obj: Value, by: Owner) -> Result<Value> {
        self.normalise(res, ns, &mut obj)?;
        if meta_str(&obj, "name").is_empty()
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            obj["metadata"]["name"] = json!(format!("{prefix}{:05x}", self.uids + 1));
        }
        let name = meta_str(&obj, "name").to_string();
        if !valid_name(&name) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("{} \"{name}\" is invalid: metadata.name", res.kind),
            ));
        }
        let k = key(res, ns, &name);
        if self.objects.contains_key(&k) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{}.{} \"{name}\" already exists", res.plural, res.group),
            ));
        }
        self.uids += 1;
        let meta = obj["metadata"].as_object_mut().unwrap();
        meta.insert(
            "uid".into(),
            json!(format!("00000000-0000-4000-8000-{:012x}", self.uids)),
        );
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.remove("deletionTimestamp");
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        if res.generation {
            meta.insert("generation".into(), json!(1));
        }
        if res.status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if res.group == "apiextensions.k8s.io" {
            self.register(&obj)?;
            obj["status"] = json!({"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
            ], "acceptedNames": obj["spec"]["names"].clone()});
        }
        let managers = match by {
            Owner::Update(m) => {
                let mut ms = Managers::new();
                apply::record_update(&json!({}), &obj, &m, "", &mut ms);
                ms
            }
            Owner::Apply(ms) => ms,
        };
        obj["metadata"]["managedFields"] =
            apply::managed_fields(&managers, &res.api_version(), &now());
        self.managers.insert(k.clone(), managers);
        Ok(self.commit(res, k, obj, None))
    }

    /// Replace (PUT) the object or its status; also the last step of every patch and apply.
    pub fn replace(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        mut obj: Value,
        status: bool,
        by: Owner,
    ) -> Result<Value> {
        self.normalise(res, ns, &mut obj)?;
        if status && !res.status {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("{} has no status", res.plural),
            ));
        }
        let k = key(res, ns, name);
        let old = self
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        if !meta_str(&obj, "name").is_empty() && meta_str(&obj, "name") != name {
            return Err(ApiError::bad(
                "the name of the object does not match the URL",
            ));
        }
        let rv = meta_str(&obj, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {}.{} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.plural, res.group
                ),
            ));
        }
        let mut new = if status {
            let mut n = old.clone();
            n["status"] = obj["status"].clone();
            n
        } else {
            if res.status {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        obj.as_object_mut().unwrap().remove("status");
                    }
                }
            }
            obj
        };
        let meta = new["metadata"].as_object_mut().unwrap();
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "managedFields",
        ] {
            match old["metadata"].get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        meta.insert("name".into(), json!(name));
        if res.generation && spec_part(&new) != spec_part(&old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        let before = self.managers.get(&k).cloned().unwrap_or_default();
        let managers = match by {
            Owner::Update(m) => {
                let mut ms = before.clone();
                let sub = if status { "status" } else { "" };
                apply::record_update(&old, &new, &m, sub, &mut ms);
                ms
            }
            Owner::Apply(ms) => ms,
        };
        if managers != before {
            new["metadata"]["managedFields"] =
                apply::managed_fields(&managers, &res.api_version(), &now());
        }
        if without_volatile(&new) == without_volatile(&old) {
            self.managers.insert(k, managers);
            return Ok(Self::render(res, &old));
        }
        if res.group == "apiextensions.k8s.io" && !status {
            self.register(&new)?;
        }
        self.managers.insert(k.clone(), managers);
        Ok(self.commit(res, k, new, Some(old)))
    }

    /// A merge, JSON or strategic patch of the object or its status.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        kind: PatchType,
        body: &Value,
        status: bool,
        manager: &str,
    ) -> Result<Value> {
        let old = self.get(res, ns, name)?;
        let mut doc = old.clone();
        apply::patch(&mut doc, kind, body).map_err(|e| ApiError::new(422, "Invalid", e))?;
        if doc["metadata"]["resourceVersion"].is_null() {
            doc["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        self.replace(res, ns, name, doc, status, Owner::Update(manager.into()))
    }

    /// Server-side apply (see `apply` for what is simplified); creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        applied: &Value,
        status: bool,
        manager: &str,
        force: bool,
    ) -> Result<Value> {
        if manager.is_empty() {
            return Err(ApiError::bad(
                "PatchOptions.fieldManager is required for apply requests",
            ));
        }
        if !meta_str(applied, "name").is_empty() && meta_str(applied, "name") != name {
            return Err(ApiError::bad(
                "the name in the applied object does not match the URL",
            ));
        }
        if applied["apiVersion"].as_str().is_none() || applied["kind"].as_str().is_none() {
            return Err(ApiError::bad("apply needs apiVersion and kind"));
        }
        let k = key(res, ns, name);
        let sub = if status { "status" } else { "" };
        let has_status = res.status;
        let in_scope = move |p: &apply::Path| {
            let is_status = p.first().is_some_and(|k| k == "status");
            if status {
                is_status
            } else {
                !(has_status && is_status)
            }
        };
        let mut managers = self.managers.get(&k).cloned().unwrap_or_default();
        let conflict = |c: Vec<String>| ApiError::new(409, "Conflict", c.join("; "));
        let Some(old) = self.objects.get(&k).cloned() else {
            if status {
                return Err(ApiError::not_found(res, name));
            }
            let mut live = json!({"metadata": {"name": name}});
            apply::apply(
                &mut live,
                applied,
                manager,
                sub,
                force,
                &mut managers,
                &in_scope,
            )
            .map_err(conflict)?;
            return self.create(res, ns, live, Owner::Apply(managers));
        };
        let mut live = old;
        apply::apply(
            &mut live,
            applied,
            manager,
            sub,
            force,
            &mut managers,
            &in_scope,
        )
        .map_err(conflict)?;
        self.replace(res, ns, name, live, status, Owner::Apply(managers))
    }

    /// Delete: with finalizers, mark (`deletionTimestamp`, and a new generation for custom
    /// resources) and return the object; without, remove and return a Success status.
    pub fn delete(&mut self, res: &Resource, ns: &str, name: &str, opts: &Value) -> Result<Value> {
        let k = key(res, ns, name);
        let old = self
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let pre = &opts["preconditions"];
        for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(want) = pre[field].as_str()
                && want != meta_str(&old, field)
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: {what} in precondition: {want}, {what} in object meta: {}",
                        meta_str(&old, field)
                    ),
                ));
            }
        }
        let pending = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if pending && old["metadata"]["deletionTimestamp"].is_string() {
            return Ok(Self::render(res, &old));
        }
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = json!(now());
        if pending {
            if res.generation {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                new["metadata"]["generation"] = json!(g);
            }
            return Ok(self.commit(res, k, new, Some(old)));
        }
        self.commit(res, k, new, Some(old));
        Ok(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": res.group, "kind": res.plural},
        }))
    }
}
