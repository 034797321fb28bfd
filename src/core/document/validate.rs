//! Meaning checks on a parsed document, all at once, before anything is written: names and URIs
//! obey the gateway's rules, nothing is duplicated, references resolve, credentials are well
//! formed (and, given the key, decrypt). Entries a peer gateway federates
//! ([`super::federated`]) are not checked: they are never applied.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::{Document, Entity, Tag, federated, rules};
use crate::core::kind::Kind;
use crate::core::quote::quote;
use crate::core::secrets::{self, Secret};

/// MIME types the gateway accepts for resources (`VALIDATION_ALLOWED_MIME_TYPES`).
pub const ALLOWED_MIME_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/css",
    "text/markdown",
    "text/javascript",
    "application/json",
    "application/xml",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/svg+xml",
    "application/octet-stream",
];
const REQUEST_TYPES: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];
const TOOL_AUTH_TYPES: &[&str] = &["basic", "bearer", "authheaders"];

/// One thing wrong with a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer to the value.
    pub pointer: String,
    pub reason: String,
}

/// Everything wrong with a document, naming the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {} problem{}",
            self.file,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {}: {}", self.file, p.pointer, p.reason)?;
        }
        Ok(())
    }
}

/// What the checks may consult beyond the document.
#[derive(Default)]
pub struct Context<'a> {
    /// Decrypt every `auth_value` with this secret.
    pub secret: Option<&'a Secret>,
    /// Entities that exist on the target gateway (kind, name or URI), for references a
    /// document does not carry itself. `None`: references must resolve inside the document.
    pub live: Option<&'a HashSet<(Kind, String)>>,
}

/// Everything wrong with one tool outside a document (bulk import's items), with pointers
/// under `base`: the same rules and messages as a document's tools.
pub fn tool_problems(t: &super::Tool, base: &str, cx: &Context<'_>) -> Vec<Problem> {
    let mut v = Checker {
        problems: Vec::new(),
        aside: HashSet::new(),
    };
    v.tool(base, t, cx);
    v.problems
}

/// Check a document; every problem is reported at once.
pub fn validate(doc: &Document, file: &str, cx: &Context<'_>) -> Result<(), ValidationError> {
    let aside = federated::positions(&federated::detect(doc));
    let mut v = Checker {
        problems: Vec::new(),
        aside,
    };
    let e = &doc.entities;

    for (i, t) in e.tools.iter().enumerate() {
        if v.aside.contains(&(Kind::Tool, i)) {
            continue;
        }
        v.tool(&format!("/entities/tools/{i}"), t, cx);
    }
    for (i, g) in e.gateways.iter().enumerate() {
        let at = |f: &str| format!("/entities/gateways/{i}{f}");
        v.name(&at("/name"), &g.name);
        v.url(&at("/url"), &g.url);
        if let Some(t) = &g.transport
            && !matches!(t.to_ascii_uppercase().as_str(), "SSE" | "STREAMABLEHTTP")
        {
            v.push(
                at("/transport"),
                format!("{} is not SSE or STREAMABLEHTTP", quote(t)),
            );
        }
        v.description(&at("/description"), g.description.as_deref(), false);
        v.tags(&at("/tags"), &g.tags);
        for (j, h) in g.passthrough_headers.iter().flatten().enumerate() {
            v.rule(
                &at(&format!("/passthrough_headers/{j}")),
                rules::header_name(h),
            );
        }
        v.auth(
            &at(""),
            g.auth_type.as_deref(),
            g.auth_value.as_deref(),
            TOOL_AUTH_TYPES,
            cx,
        );
    }
    for (i, p) in e.prompts.iter().enumerate() {
        if v.aside.contains(&(Kind::Prompt, i)) {
            continue;
        }
        let at = |f: &str| format!("/entities/prompts/{i}{f}");
        v.name(&at("/name"), &p.name);
        v.description(&at("/description"), p.description.as_deref(), false);
        v.rule(&at("/template"), rules::template(&p.template));
        if let Some(s) = &p.input_schema {
            v.rule(&at("/input_schema"), rules::json_object(s));
        }
        v.tags(&at("/tags"), &p.tags);
    }
    for (i, r) in e.resources.iter().enumerate() {
        if v.aside.contains(&(Kind::Resource, i)) {
            continue;
        }
        let at = |f: &str| format!("/entities/resources/{i}{f}");
        v.rule(&at("/uri"), rules::resource_uri(&r.uri));
        v.rule(&at("/name"), rules::plain_name(&r.name));
        if let Some(m) = &r.mime_type
            && !ALLOWED_MIME_TYPES.contains(&m.as_str())
        {
            v.push(
                at("/mime_type"),
                format!(
                    "{} is not a MIME type the gateway accepts ({})",
                    quote(m),
                    ALLOWED_MIME_TYPES.join(", ")
                ),
            );
        }
        v.description(&at("/description"), r.description.as_deref(), false);
        if let Some(c) = &r.content {
            v.rule(&at("/content"), rules::content(c));
        }
        v.tags(&at("/tags"), &r.tags);
    }
    for (i, r) in e.roots.iter().enumerate() {
        if let Err(reason) = check_root_uri(&r.uri) {
            v.push(format!("/entities/roots/{i}/uri"), reason);
        }
        if let Some(n) = &r.name {
            v.rule(&format!("/entities/roots/{i}/name"), rules::root_name(n));
        }
    }
    for (i, s) in e.servers.iter().enumerate() {
        let at = |f: &str| format!("/entities/servers/{i}{f}");
        v.rule(&at("/name"), rules::plain_name(&s.name));
        if let Some(id) = &s.id
            && !is_uuid(id)
        {
            v.push(at("/id"), format!("{} is not a UUID", quote(id)));
        }
        v.description(&at("/description"), s.description.as_deref(), false);
        if let Some(icon) = &s.icon {
            v.rule(&at("/icon"), rules::url(icon, &["http", "https"]));
        }
        v.tags(&at("/tags"), &s.tags);
    }

    v.duplicates(&e.tools, "tools");
    v.duplicates(&e.gateways, "gateways");
    v.duplicates(&e.servers, "servers");
    v.duplicates(&e.prompts, "prompts");
    v.duplicates(&e.resources, "resources");
    v.duplicates(&e.roots, "roots");
    v.references(doc, cx);

    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            file: file.to_string(),
            problems: v.problems,
        })
    }
}

struct Checker {
    problems: Vec<Problem>,
    /// Set-aside entries (kind, index): not checked, never duplicates.
    aside: HashSet<(Kind, usize)>,
}

impl Checker {
    fn push(&mut self, pointer: String, reason: String) {
        self.problems.push(Problem { pointer, reason });
    }

    fn rule(&mut self, at: &str, result: Result<(), String>) {
        if let Err(reason) = result {
            self.push(at.to_string(), reason);
        }
    }

    fn name(&mut self, at: &str, name: &str) {
        self.rule(at, check_name(name));
    }

    fn url(&mut self, at: &str, url: &str) {
        self.rule(at, rules::url(url, &["http", "https"]));
    }

    fn description(&mut self, at: &str, d: Option<&str>, tool: bool) {
        if let Some(d) = d {
            self.rule(at, rules::description(d, tool));
        }
    }

    fn tags(&mut self, at: &str, tags: &[Tag]) {
        for (j, t) in tags.iter().enumerate() {
            self.rule(&format!("{at}/{j}"), rules::tag(t.as_str()));
        }
    }

    /// Everything wrong with one tool at `base` (its pointer).
    fn tool(&mut self, base: &str, t: &super::Tool, cx: &Context<'_>) {
        let at = |f: &str| format!("{base}{f}");
        self.rule(
            &at("/name"),
            check_name(&t.name).and_then(|()| rules::tool_name_length(&slugify(&t.name))),
        );
        self.url(&at("/url"), &t.url);
        if t.integration_type != "REST" {
            self.push(
                at("/integration_type"),
                format!(
                    "{} tools come from peer gateways and cannot be created; only REST",
                    quote(&t.integration_type)
                ),
            );
        }
        if let Some(rt) = &t.request_type
            && !REQUEST_TYPES.contains(&rt.to_ascii_uppercase().as_str())
        {
            self.push(
                at("/request_type"),
                format!("{} is not one of GET, POST, PUT, DELETE, PATCH", quote(rt)),
            );
        }
        self.gateway_rules_tool(&at(""), t);
        self.auth(
            &at(""),
            t.auth_type.as_deref(),
            t.auth_value.as_deref(),
            TOOL_AUTH_TYPES,
            cx,
        );
    }

    /// The gateway's rules for a tool's free-form fields.
    fn gateway_rules_tool(&mut self, at: &str, t: &super::Tool) {
        let at = |f: &str| format!("{at}{f}");
        if let Some(d) = &t.display_name {
            self.rule(&at("/displayName"), rules::display_name(d));
        }
        self.description(&at("/description"), t.description.as_deref(), true);
        for (k, val) in t.headers.iter().flatten() {
            let p = at(&format!(
                "/headers/{}",
                k.replace('~', "~0").replace('/', "~1")
            ));
            self.rule(&p, rules::header_name(k));
            self.rule(&p, rules::header_value(val));
        }
        for (f, val) in [
            ("/input_schema", &t.input_schema),
            ("/output_schema", &t.output_schema),
            ("/annotations", &t.annotations),
        ] {
            if let Some(val) = val {
                self.rule(&at(f), rules::json_object(val));
            }
        }
        self.tags(&at("/tags"), &t.tags);
    }

    fn auth(
        &mut self,
        at: &str,
        auth_type: Option<&str>,
        auth_value: Option<&str>,
        allowed: &[&str],
        cx: &Context<'_>,
    ) {
        if let Some(t) = auth_type
            && !allowed.contains(&t)
        {
            self.push(
                format!("{at}/auth_type"),
                format!("{} is not one of {}", quote(t), allowed.join(", ")),
            );
        }
        for (field, reason) in keyless_auth_problems(auth_type, auth_value) {
            self.push(format!("{at}/{field}"), reason);
        }
        if let (Some(value), Some(secret)) = (auth_value, cx.secret)
            && secrets::check_encoded(value).is_ok()
        {
            match secret.decrypt(value) {
                Err(e) => self.push(format!("{at}/auth_value"), e.to_string()),
                Ok(creds) => {
                    if let Some(t) = auth_type {
                        self.rule(
                            &format!("{at}/auth_value"),
                            rules::credentials(t, creds.pairs()),
                        );
                    }
                }
            }
        }
    }

    fn duplicates<E: Entity>(&mut self, list: &[E], plural: &str) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, item) in list.iter().enumerate() {
            if self.aside.contains(&(E::KIND, i)) {
                continue;
            }
            let key = identity(E::KIND, item.key());
            if let Some(first) = seen.get(&key) {
                self.push(
                    format!("/entities/{plural}/{i}"),
                    format!(
                        "duplicate {} {} (also at /entities/{plural}/{first})",
                        E::KIND,
                        quote(item.key())
                    ),
                );
            } else {
                seen.insert(key, i);
            }
        }
    }

    fn references(&mut self, doc: &Document, cx: &Context<'_>) {
        let e = &doc.entities;
        let declared: HashSet<(Kind, String)> = [Kind::Tool, Kind::Resource, Kind::Prompt]
            .into_iter()
            .flat_map(|k| e.keys(k).into_iter().map(move |key| (k, identity(k, key))))
            .collect();
        let known = |kind: Kind, key: &str| {
            let id = (kind, identity(kind, key));
            declared.contains(&id) || cx.live.is_some_and(|live| live.contains(&id))
        };
        // Without a view of the gateway, tool references may also name federated tools or ids
        // the document cannot show; those are only checked when the gateway is known.
        let Some(_) = cx.live else { return };
        // Tools a peer gateway of the document will federate, named `<gateway-slug>-...`.
        let federated = |r: &str| {
            let r = slugify(r);
            e.gateways
                .iter()
                .any(|g| r.starts_with(&format!("{}-", slugify(&g.name))))
        };
        for (i, s) in e.servers.iter().enumerate() {
            for (field, kind, refs) in [
                ("tool_ids", Kind::Tool, &s.tool_ids),
                ("resource_uris", Kind::Resource, &s.resource_uris),
                ("prompt_names", Kind::Prompt, &s.prompt_names),
            ] {
                for (j, r) in refs.iter().enumerate() {
                    // Id-form links are resolved (or reported as dropped) by the import.
                    if is_id_ref(r) || (kind == Kind::Tool && federated(r)) {
                        continue;
                    }
                    if !known(kind, r) {
                        self.push(
                            format!("/entities/servers/{i}/{field}/{j}"),
                            format!(
                                "server {} refers to {} {}, which is neither in the document nor on the gateway",
                                quote(&s.name),
                                kind,
                                quote(r)
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// What is wrong with a credential without the key to decrypt it: a value that is not an
/// encrypted credential at all, or one no `auth_type` says how to apply (the gateway would
/// never receive it). `validate` runs these with and without a secret, so an offline
/// `validate` refuses everything an import would refuse before decrypting.
pub fn keyless_auth_problems(
    auth_type: Option<&str>,
    auth_value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Some(value) = auth_value else {
        return out;
    };
    if let Err(e) = secrets::check_encoded(value) {
        out.push(("auth_value", e.to_string()));
    }
    if !value.is_empty() && auth_type.is_none_or(|t| t.trim().is_empty()) {
        out.push((
            "auth_type",
            "missing: the document carries an auth_value but no auth_type (basic, bearer or authheaders) to apply it with".into(),
        ));
    }
    out
}

/// The form two keys are compared in: the gateway's slug for names, the URI as written for
/// resources, the gateway's canonical form for roots.
pub fn identity(kind: Kind, key: &str) -> String {
    match kind {
        Kind::Resource => key.to_string(),
        Kind::Root => canonical_root(key),
        _ => slugify(key),
    }
}

/// A root URI as the gateway stores it: scheme and host lower-cased, default port and
/// trailing slash removed.
pub fn canonical_root(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let mut authority = authority.to_ascii_lowercase();
    for (s, port) in [
        ("http", ":80"),
        ("https", ":443"),
        ("ws", ":80"),
        ("wss", ":443"),
    ] {
        if scheme == s && authority.ends_with(port) {
            authority.truncate(authority.len() - port.len());
        }
    }
    let path = path.trim_end_matches('/');
    format!("{scheme}://{authority}{path}")
}

/// A reference in id form (32 hex digits, as ContextForge's selective export writes server
/// links): it names an entity of the source gateway, not one the document holds.
pub fn is_id_ref(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The gateway's slugify: lower-case, apostrophes inside words dropped, runs of anything but
/// letters and digits become one `-`, no `-` at either end.
pub fn slugify(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        if (c == '\'' || c == '\u{2019}') && word(i.checked_sub(1)) && word(Some(i + 1)) {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Entity names sent in slug form (tools, gateways, prompts): ASCII letters, digits and
/// `._-/`, starting with a letter, digit or `_`, at most 255 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("must not be empty".into()),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
            return Err(format!(
                "{} must start with a letter, digit or '_'",
                quote(name)
            ));
        }
        _ => {}
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(format!(
            "{} contains {}; names may hold letters, digits and . _ - / only",
            quote(name),
            quote(bad.encode_utf8(&mut [0; 4]))
        ));
    }
    let n = name.chars().count();
    if n > rules::MAX_NAME {
        return Err(format!(
            "is {n} characters long; the gateway allows at most {}",
            rules::MAX_NAME
        ));
    }
    Ok(())
}

/// The gateway's root URI policy, as far as it is fixed: a scheme, no query, fragment, user
/// info or control characters. (Which schemes are allowed is the gateway's setting.)
pub fn check_root_uri(uri: &str) -> Result<(), String> {
    let n = uri.chars().count();
    if n > rules::MAX_URL {
        return Err(format!(
            "is {n} characters long; the gateway allows root URIs of at most {}",
            rules::MAX_URL
        ));
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!(
            "{} has no scheme (file://, https://, ...)",
            quote(uri)
        ));
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("{} has an invalid scheme", quote(uri)));
    }
    if uri.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    if uri.contains('?') || uri.contains('#') {
        return Err(format!("{} must not have a query or fragment", quote(uri)));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!("{} must not carry user info", quote(uri)));
    }
    Ok(())
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
