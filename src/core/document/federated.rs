//! Entries a document holds that belong to a peer gateway, not to the gateway it describes.
//!
//! ContextForge's own export writes the prompts and resources its peer gateways federate as if
//! they were local: a prompt with an empty template, a resource without content, and one entry
//! per peer when several peers expose the same name. Its documents and tests also mark items
//! with the `gateway_id` or `gateway_name` of the peer they come from. None of these can be
//! created (the peer provides them once the gateway is registered), so they are set aside
//! before anything else looks at the document: validation ignores them, duplicates among them
//! are no error, and an import reports each as skipped with its reason.

use std::collections::{HashMap, HashSet};

use super::{Document, Entity};
use crate::core::kind::Kind;

/// One entry set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    pub kind: Kind,
    /// Its position in the document's list of that kind.
    pub index: usize,
    /// Its name, or URI for resources.
    pub key: String,
    pub reason: String,
}

impl SetAside {
    /// JSON pointer to the entry.
    pub fn pointer(&self) -> String {
        format!("/entities/{}/{}", self.kind.plural(), self.index)
    }
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn marked(gateway_id: &Option<String>, gateway_name: &Option<String>) -> Option<String> {
    let (name, id) = (given(gateway_name), given(gateway_id));
    let what = match (name, id) {
        (Some(n), _) => format!("gateway_name '{n}'"),
        (None, Some(i)) => format!("gateway_id '{i}'"),
        (None, None) => return None,
    };
    Some(format!(
        "federated from a peer gateway ({what}): the peer provides it once it is registered; not created"
    ))
}

/// Every entry of `doc` that a peer gateway federates, in document order by kind.
pub fn detect(doc: &Document) -> Vec<SetAside> {
    let e = &doc.entities;
    let mut out = Vec::new();
    let mut push = |kind, index, key: &str, reason: String| {
        out.push(SetAside {
            kind,
            index,
            key: key.to_string(),
            reason,
        })
    };
    for (i, t) in e.tools.iter().enumerate() {
        if let Some(r) = marked(&t.gateway_id, &t.gateway_name) {
            push(Kind::Tool, i, t.key(), r);
        }
    }
    for (i, p) in e.prompts.iter().enumerate() {
        if let Some(r) = marked(&p.gateway_id, &p.gateway_name) {
            push(Kind::Prompt, i, p.key(), r);
        } else if p.template.trim().is_empty() {
            push(
                Kind::Prompt,
                i,
                p.key(),
                "the document holds an empty template, as ContextForge's export writes the prompts its peer gateways federate; not created".into(),
            );
        }
    }
    let mut per_uri: HashMap<&str, usize> = HashMap::new();
    for r in &e.resources {
        *per_uri.entry(r.uri.as_str()).or_default() += 1;
    }
    for (i, r) in e.resources.iter().enumerate() {
        let shared = per_uri[r.uri.as_str()];
        if let Some(reason) = marked(&r.gateway_id, &r.gateway_name) {
            push(Kind::Resource, i, r.key(), reason);
        } else if r.content.is_none() && shared > 1 {
            push(
                Kind::Resource,
                i,
                r.key(),
                format!(
                    "the document holds no content for it and {shared} entries share its URI, as ContextForge's export writes the resources its peer gateways federate; not created"
                ),
            );
        }
    }
    out
}

/// The positions of set-aside entries, for checks that skip them.
pub fn positions(set_aside: &[SetAside]) -> HashSet<(Kind, usize)> {
    set_aside.iter().map(|s| (s.kind, s.index)).collect()
}

/// `doc` without the set-aside entries.
pub fn without(doc: &Document, set_aside: &[SetAside]) -> Document {
    let skip = positions(set_aside);
    fn keep<E: Entity + Clone>(v: &[E], skip: &HashSet<(Kind, usize)>) -> Vec<E> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(&(E::KIND, *i)))
            .map(|(_, x)| x.clone())
            .collect()
    }
    let mut out = doc.clone();
    out.entities.tools = keep(&doc.entities.tools, &skip);
    out.entities.prompts = keep(&doc.entities.prompts, &skip);
    out.entities.resources = keep(&doc.entities.resources, &skip);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::test_doc;

    #[test]
    fn leaked_federated_entries_are_recognised() {
        let doc = test_doc(
            r#"{"prompts":[{"name":"greet","template":""},{"name":"greet","template":""},
                           {"name":"summarize","template":"Sum {{ text }}"},
                           {"name":"hello","template":"Hi","gateway_name":"peer-a"}],
                "resources":[{"name":"motd","uri":"tiny://motd"},{"name":"motd","uri":"tiny://motd"},
                             {"name":"alone","uri":"docs://alone"},
                             {"name":"r","uri":"docs://r","content":"x","gateway_id":"0123456789abcdef0123456789abcdef"}],
                "tools":[{"name":"peer-echo","url":"https://p.example/mcp","integration_type":"MCP","gateway_name":"peer"},
                         {"name":"local","url":"https://x.example/a","gateway_name":""}]}"#,
        );
        let got: Vec<(String, String)> = detect(&doc)
            .iter()
            .map(|s| (s.pointer(), s.key.clone()))
            .collect();
        let want = [
            ("/entities/tools/0", "peer-echo"),
            ("/entities/prompts/0", "greet"),
            ("/entities/prompts/1", "greet"),
            ("/entities/prompts/3", "hello"),
            ("/entities/resources/0", "tiny://motd"),
            ("/entities/resources/1", "tiny://motd"),
            ("/entities/resources/3", "docs://r"),
        ];
        assert_eq!(
            got,
            want.map(|(p, k)| (p.to_string(), k.to_string())).to_vec()
        );
        let s = detect(&doc);
        assert!(
            s[3].reason.contains("gateway_name 'peer-a'"),
            "{}",
            s[3].reason
        );
        assert!(s[6].reason.contains("gateway_id '0123"), "{}", s[6].reason);
        assert!(
            s[1].reason
                .starts_with("the document holds an empty template")
        );

        let kept = without(&doc, &s);
        assert_eq!(kept.entities.keys(Kind::Prompt), vec!["summarize"]);
        assert_eq!(kept.entities.keys(Kind::Resource), vec!["docs://alone"]);
        assert_eq!(kept.entities.keys(Kind::Tool), vec!["local"]);
    }
}
