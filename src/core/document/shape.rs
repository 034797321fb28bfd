//! Reading `entities` strictly where ContextForge is strict (its import refuses any key that is
//! not one of the six types), and ContextForge's server link shapes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Document, Entities};
use crate::core::kind::Kind;

/// A key of `entities` that names no entity type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownType {
    /// JSON pointer to the key (`/entities/tool`).
    pub pointer: String,
    /// The key as written.
    pub name: String,
    /// The type it most likely meant.
    pub suggestion: Option<Kind>,
}

impl UnknownType {
    fn new(name: &str) -> UnknownType {
        UnknownType {
            pointer: format!("/entities/{}", name.replace('~', "~0").replace('/', "~1")),
            name: name.to_string(),
            suggestion: Kind::suggest(name),
        }
    }

    /// Why it is refused, and what to write instead.
    pub fn reason(&self) -> String {
        let known = Kind::DISPLAY.map(Kind::plural).join(", ");
        if let Some(k) = self.suggestion {
            return format!(
                "unknown entity type '{}' (did you mean `{}`?); known types: {known}",
                self.name,
                k.plural()
            );
        }
        if self.name == "a2a_agents" {
            return format!(
                "A2A agents are not managed by mcp-gitops (ContextForge's own export does not write them and its import refuses them); known types: {known}"
            );
        }
        format!("unknown entity type '{}'; known types: {known}", self.name)
    }
}

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.reason())
    }
}

impl<'de> Deserialize<'de> for Entities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entities;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of entity lists")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entities, A::Error> {
                let mut e = Entities::default();
                let mut seen: Vec<String> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    match key.as_str() {
                        "tools" => e.tools = map.next_value()?,
                        "gateways" => e.gateways = map.next_value()?,
                        "servers" => e.servers = map.next_value()?,
                        "prompts" => e.prompts = map.next_value()?,
                        "resources" => e.resources = map.next_value()?,
                        "roots" => e.roots = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            e.unknown_types.push(key.clone());
                        }
                    }
                    seen.push(key);
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

/// The keys of `entities` that name no type, each with its pointer and suggestion.
pub fn unknown_types(doc: &Document) -> Vec<UnknownType> {
    doc.entities
        .unknown_types
        .iter()
        .map(|n| UnknownType::new(n))
        .collect()
}

/// ContextForge links servers to resources by id (its API) or by name (its docs and tests);
/// mcp-gitops links them by URI. A link that is no URI of the document but the name of
/// exactly one of its resources becomes that resource's URI. Ids are left for the import,
/// which resolves or drops them with a note.
pub fn resource_links_by_uri(doc: &mut Document) {
    let e = &mut doc.entities;
    let resources = &e.resources;
    for s in &mut e.servers {
        for link in &mut s.resource_uris {
            if resources.iter().any(|r| r.uri == *link) {
                continue;
            }
            let mut named = resources.iter().filter(|r| r.name == *link);
            if let (Some(r), None) = (named.next(), named.next()) {
                *link = r.uri.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::test_doc;

    #[test]
    fn unknown_types_have_pointer_and_suggestion() {
        let u = UnknownType::new("tool");
        assert_eq!(u.pointer, "/entities/tool");
        assert_eq!(
            u.to_string(),
            "/entities/tool: unknown entity type 'tool' (did you mean `tools`?); known types: tools, gateways, servers, prompts, resources, roots"
        );
        assert_eq!(UnknownType::new("a/b").pointer, "/entities/a~1b");
        assert!(
            UnknownType::new("a2a_agents")
                .reason()
                .starts_with("A2A agents are not managed by mcp-gitops")
        );
    }

    use crate::core::document::{federated, from_str};

    #[test]
    fn contextforge_test_shapes_load() {
        // Their tests' documents: version "1.0", no metadata, no exported_at.
        let doc = from_str(
            r#"{"version":"1.0","entities":{"tools":[{"name":"test_tool","url":"https://api.example.com/tool","integration_type":"REST","request_type":"GET","tags":["api"]}]}}"#,
            None,
            "t.json",
        )
        .unwrap();
        assert_eq!(doc.version, "1.0");
        assert_eq!(doc.metadata, None);
        assert_eq!(doc.entities.keys(Kind::Tool), vec!["test_tool"]);
        // A protocol date as version, as their export writes.
        assert!(from_str(r#"{"version":"2025-11-25","entities":{}}"#, None, "t").is_ok());
    }

    #[test]
    fn items_with_gateway_name_load_and_are_set_aside() {
        let doc = from_str(
            r#"{"version":"1.0","entities":{
                "tools":[{"name":"local","url":"https://x.example/a","integration_type":"REST","gateway_name":null},
                         {"name":"remote","url":"https://p.example/mcp","integration_type":"MCP","gateway_name":"peer-gw"}],
                "prompts":[{"name":"hi","template":"Hi","gateway_id":"0123456789abcdef0123456789abcdef"}]}}"#,
            None,
            "t.json",
        )
        .unwrap();
        assert_eq!(
            doc.entities.tools[1].gateway_name.as_deref(),
            Some("peer-gw")
        );
        let aside = federated::detect(&doc);
        let keys: Vec<&str> = aside.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, vec!["remote", "hi"]);
        // Never written back.
        let text = crate::core::document::to_string(&doc, crate::core::document::Format::Json);
        assert!(
            !text.contains("gateway_name") && !text.contains("gateway_id"),
            "{text}"
        );
    }

    #[test]
    fn servers_with_associated_fields_map_to_server_links() {
        let doc = from_str(
            r#"{"version":"1.0","entities":{
                "tools":[{"name":"weather_api","url":"https://x.example/w","integration_type":"REST"}],
                "resources":[{"name":"runbook","uri":"docs://ops/runbook","content":"x"}],
                "prompts":[{"name":"summarize","template":"Sum {{ text }}"}],
                "servers":[{"name":"ai","associated_tools":["weather_api"],
                            "associated_resources":["runbook"],"associated_prompts":["summarize"]}]}}"#,
            None,
            "t.json",
        )
        .unwrap();
        let s = &doc.entities.servers[0];
        assert_eq!(s.tool_ids, vec!["weather_api"]);
        assert_eq!(s.resource_uris, vec!["docs://ops/runbook"]);
        assert_eq!(s.prompt_names, vec!["summarize"]);
        let text = crate::core::document::to_string(&doc, crate::core::document::Format::Json);
        assert!(text.contains(r#""resource_uris": ["#), "{text}");
    }

    #[test]
    fn resource_links_by_name_become_uris() {
        let mut doc = test_doc(
            r#"{"resources":[{"name":"guide","uri":"docs://guide","content":"x"},
                             {"name":"twin","uri":"a://1","content":"x"},{"name":"twin","uri":"a://2","content":"x"}],
                "servers":[{"name":"s","associated_resources":["guide","docs://guide","twin","0123456789abcdef0123456789abcdef"]}]}"#,
        );
        resource_links_by_uri(&mut doc);
        assert_eq!(
            doc.entities.servers[0].resource_uris,
            vec![
                "docs://guide",
                "docs://guide",
                "twin",
                "0123456789abcdef0123456789abcdef"
            ]
        );
    }
}
