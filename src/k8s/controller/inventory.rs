//! The inventory of what a config owns: counts always; the entities themselves in the status
//! while they are few ([`INLINE_MAX`]), past that in a ConfigMap the config owns
//! (`<name>-inventory`, garbage-collected with it), written only when the list changed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Error, MANAGER};
use crate::core::document::Document;
use crate::core::kind::Kind;
use crate::k8s::crd::{GatewayConfig, Inventory};

/// Entities listed in the status itself; a longer list goes to the ConfigMap.
pub const INLINE_MAX: usize = 100;
/// The ConfigMap's key holding the list.
pub const KEY: &str = "inventory.json";

/// Every entity `desired` declares (`<kind>/<name or URI>`, sorted by kind then key).
fn entries(desired: &Document) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        if kind == Kind::Root {
            continue; // roots carry no ownership tag: never owned
        }
        let mut keys: Vec<String> = desired
            .entities
            .keys(kind)
            .into_iter()
            .map(|k| k.to_string())
            .collect();
        if !keys.is_empty() {
            keys.sort();
            out.insert(kind.plural(), keys);
        }
    }
    out
}

/// The inventory of `desired` for the status, and the ConfigMap's text when the list is too
/// long for it.
pub fn of(desired: &Document, owner_tag: &str, cfg_name: &str) -> (Inventory, Option<String>) {
    let all = entries(desired);
    let total: usize = all.values().map(Vec::len).sum();
    let listed: Vec<String> = all
        .iter()
        .flat_map(|(k, v)| v.iter().map(move |n| format!("{k}/{n}")))
        .collect();
    let mut inv = Inventory {
        owner_tag: owner_tag.to_string(),
        total: total as u32,
        counts: all
            .iter()
            .map(|(k, v)| (k.to_string(), v.len() as u32))
            .collect(),
        digest: (total > 0).then(|| super::short_digest(listed.iter().map(String::as_str))),
        ..Inventory::default()
    };
    if total <= INLINE_MAX {
        inv.entities = listed;
        return (inv, None);
    }
    inv.config_map = Some(config_map_name(cfg_name));
    let text = serde_json::to_string_pretty(&json!({
        "ownerTag": owner_tag,
        "digest": inv.digest,
        "total": total,
        "entities": all,
    }))
    .expect("a map of strings serialises");
    (inv, Some(text))
}

/// `<name>-inventory`; a name too long for that is shortened with a hash of it.
pub fn config_map_name(cfg_name: &str) -> String {
    let name = format!("{cfg_name}-inventory");
    if name.len() <= 253 {
        return name;
    }
    let h: String = Sha256::digest(cfg_name.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut cut = 253 - "-inventory".len() - 9;
    while !cfg_name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{h}-inventory", &cfg_name[..cut])
}

/// Bring the config's inventory ConfigMap in line with `new` (the status about to be written)
/// when it differs from `old` (the status in force): written by server-side apply when the list
/// moved there or changed, deleted when the list fits the status again.
pub async fn sync(
    client: &kube::Client,
    cfg: &GatewayConfig,
    old: Option<&Inventory>,
    new: &Inventory,
    text: Option<&str>,
) -> Result<(), Error> {
    let ns = cfg.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let same = |a: &Inventory| a.config_map == new.config_map && a.digest == new.digest;
    match (&new.config_map, text) {
        (Some(name), Some(text)) if !old.is_some_and(same) => {
            let owner = cfg.controller_owner_ref(&()).ok_or_else(|| {
                Error::Invalid("the GatewayConfig has no uid to own its inventory".into())
            })?;
            let body = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {"app.kubernetes.io/managed-by": MANAGER},
                    "ownerReferences": [owner],
                },
                "data": {KEY: text},
            });
            api.patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        }
        (None, _) => {
            if let Some(name) = old.and_then(|o| o.config_map.as_ref()) {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::Tool;

    fn doc(n: usize) -> Document {
        let mut d = Document::default();
        for i in 0..n {
            d.entities.tools.push(Tool {
                name: format!("t{i:04}"),
                ..Tool::default()
            });
        }
        d
    }

    #[test]
    fn few_entities_are_listed_in_the_status_many_in_the_config_map() {
        let (inv, text) = of(&doc(3), "mcp-gitops:k8s.ns.dev", "dev");
        assert_eq!(inv.entities, ["tools/t0000", "tools/t0001", "tools/t0002"]);
        assert_eq!((inv.total, inv.config_map.clone(), text), (3, None, None));
        let (big, text) = of(&doc(INLINE_MAX + 1), "mcp-gitops:k8s.ns.dev", "dev");
        assert!(big.entities.is_empty());
        assert_eq!(big.total as usize, INLINE_MAX + 1);
        assert_eq!(big.config_map.as_deref(), Some("dev-inventory"));
        let v: serde_json::Value = serde_json::from_str(&text.unwrap()).unwrap();
        assert_eq!(
            v["entities"]["tools"].as_array().unwrap().len(),
            INLINE_MAX + 1
        );
        assert_eq!(v["digest"], json!(big.digest));
        // The digest follows the list, and only the list.
        assert_eq!(of(&doc(3), "x", "y").0.digest, inv.digest);
        assert_ne!(of(&doc(4), "x", "y").0.digest, inv.digest);
        assert_eq!(of(&doc(0), "x", "y").0.digest, None);
    }

    #[test]
    fn a_long_name_still_gives_a_valid_config_map_name() {
        let long = "a".repeat(250);
        let n = config_map_name(&long);
        assert!(n.len() <= 253 && n.ends_with("-inventory"), "{n}");
        assert_ne!(config_map_name(&long), config_map_name(&"a".repeat(249)));
    }
}
