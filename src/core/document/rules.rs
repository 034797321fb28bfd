//! The gateway's own input rules (ContextForge 1.0.7 with its default settings: `schemas.py`,
//! `common/validators.py`, `validation/tags.py`, `services/content_security.py`, limits from
//! `config.py`): what it refuses with a 422, and what it would silently cut, drop or rewrite —
//! which would make every import and every drift check write again. Each check returns the
//! reason, phrased for a document's author; the caller adds the JSON pointer.

use serde_json::Value;

use crate::core::digest::nibble;
use crate::core::quote::quote;

pub use super::content_rules::{content, content_patterns, template};

/// `VALIDATION_MAX_NAME_LENGTH`: names, display names, resource URIs.
pub const MAX_NAME: usize = 255;
/// `VALIDATION_MAX_TOOL_NAME_LENGTH`.
pub const MAX_TOOL_NAME: usize = 128;
/// `VALIDATION_MAX_DESCRIPTION_LENGTH`: longer descriptions are cut without an error.
pub const MAX_DESCRIPTION: usize = 8192;
/// `VALIDATION_MAX_URL_LENGTH`, and the root URI's `max_length`.
pub const MAX_URL: usize = 2048;
/// `CONTENT_MAX_PROMPT_SIZE`, in UTF-8 bytes.
pub const MAX_TEMPLATE_BYTES: usize = 10240;
/// `CONTENT_MAX_RESOURCE_SIZE`, in UTF-8 bytes.
pub const MAX_CONTENT_BYTES: usize = 102_400;
/// `VALIDATION_MAX_JSON_DEPTH`: nested objects and arrays.
pub const MAX_JSON_DEPTH: usize = 30;
/// `VALIDATION_MIN_TAG_LENGTH` / `VALIDATION_MAX_TAG_LENGTH`: other tags are dropped silently.
pub const MIN_TAG: usize = 2;
pub const MAX_TAG: usize = 100;
/// Credential headers one entity may carry.
pub const MAX_AUTH_HEADERS: usize = 100;

fn len(s: &str) -> usize {
    s.chars().count()
}

fn at_most(s: &str, max: usize, what: &str) -> Result<(), String> {
    let n = len(s);
    if n > max {
        return Err(format!(
            "is {n} characters long; the gateway {what} at most {max}"
        ));
    }
    Ok(())
}

/// The gateway strips surrounding whitespace from every string it is given.
fn no_surrounding_space(s: &str) -> Result<(), String> {
    if s.trim() != s {
        return Err(format!(
            "{} has surrounding whitespace, which the gateway strips",
            quote(s)
        ));
    }
    Ok(())
}

/// Names sent as written (servers, resources): `^[a-zA-Z0-9_.\- ]+$`, at most 255.
pub fn plain_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ' ')))
    {
        return Err(format!(
            "{} contains {}; the gateway allows ASCII letters, digits, spaces and . _ - only",
            quote(name),
            quote(bad.encode_utf8(&mut [0; 4]))
        ));
    }
    no_surrounding_space(name)?;
    at_most(name, MAX_NAME, "allows")
}

/// A root's display name: at most 255.
pub fn root_name(name: &str) -> Result<(), String> {
    at_most(name, MAX_NAME, "allows root names of")
}

/// A tool's name in the form it is sent (the slug): at most 128 characters.
pub fn tool_name_length(slug: &str) -> Result<(), String> {
    at_most(slug, MAX_TOOL_NAME, "allows tool names of")
}

/// Descriptions: not longer than the gateway keeps, no markup it would strip or refuse.
/// `tool`: tool descriptions also refuse `&&`, `||` and `$(`.
pub fn description(s: &str, tool: bool) -> Result<(), String> {
    at_most(s, MAX_DESCRIPTION, "cuts descriptions to")?;
    display_text(s)?;
    if tool && let Some(p) = ["&&", "||", "$("].into_iter().find(|p| s.contains(p)) {
        return Err(format!(
            "contains {}, which the gateway refuses in tool descriptions",
            quote(p)
        ));
    }
    if tool {
        // Verified on 1.0.7: tool descriptions also go through the malicious-content scan.
        content_patterns(s)?;
    }
    Ok(())
}

/// Display names: at most 255, no markup.
pub fn display_name(s: &str) -> Result<(), String> {
    at_most(s, MAX_NAME, "allows")?;
    display_text(s)
}

/// The gateway's `sanitize_display_text`: it refuses script-like text and double
/// percent-encoding, and strips HTML tags and decodes character references (so the stored
/// text would differ from the document's).
fn display_text(s: &str) -> Result<(), String> {
    double_encoded(s)?;
    if let Some(p) = script_pattern(s) {
        return Err(format!("contains {}, which the gateway refuses", quote(p)));
    }
    if let Some(i) = s.find('<')
        && s[i + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
    {
        return Err("contains HTML markup (<...), which the gateway strips".into());
    }
    if char_reference(s) {
        return Err(
            "contains an HTML character reference (&...;), which the gateway decodes".into(),
        );
    }
    Ok(())
}

/// `javascript:`, `vbscript:` or an event handler (`onload=`) after a boundary.
fn script_pattern(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    let b = lower.as_bytes();
    for i in 0..b.len() {
        let boundary = i == 0 || b[i - 1].is_ascii_whitespace() || b"\"'`<>=".contains(&b[i - 1]);
        if !boundary {
            continue;
        }
        let rest = &lower[i..];
        for p in ["javascript:", "vbscript:"] {
            if rest.starts_with(p) {
                return Some(p);
            }
        }
        if let Some(r) = rest.strip_prefix("on") {
            let after = r.trim_start_matches(|c: char| c.is_ascii_lowercase());
            if after.len() < r.len() && after.trim_start().starts_with('=') {
                return Some("on...=");
            }
        }
    }
    None
}

/// `&name;` or `&#123;` / `&#x1f;`.
fn char_reference(s: &str) -> bool {
    s.match_indices('&').any(|(i, _)| {
        let rest = &s[i + 1..];
        let body = rest
            .strip_prefix("#x")
            .or_else(|| rest.strip_prefix("#X"))
            .or_else(|| rest.strip_prefix('#'))
            .unwrap_or(rest);
        let n = body.chars().take_while(char::is_ascii_alphanumeric).count();
        n > 0 && body[n..].starts_with(';')
    })
}

/// Percent-decode once (invalid sequences stay as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| nibble(c)),
                b.get(i + 2).and_then(|&c| nibble(c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn has_percent_escape(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'%'
            && b.get(i + 1).and_then(|&c| nibble(c)).is_some()
            && b.get(i + 2).and_then(|&c| nibble(c)).is_some()
    })
}

/// The gateway decodes percent-escapes once and refuses what is still encoded after that.
fn double_encoded(s: &str) -> Result<(), String> {
    if has_percent_escape(s) && has_percent_escape(&percent_decode(s)) {
        return Err("contains double percent-encoding (%25..), which the gateway refuses".into());
    }
    Ok(())
}

/// URLs of tools, gateways and server icons (`validate_url`, without the gateway's DNS and
/// network-range checks, which depend on where it runs). `schemes`: the schemes that make
/// sense for the field.
pub fn url(u: &str, schemes: &[&str]) -> Result<(), String> {
    no_surrounding_space(u)?;
    at_most(u, MAX_URL, "allows URLs of")?;
    let lower = u.to_ascii_lowercase();
    let Some(rest) = schemes
        .iter()
        .find_map(|s| lower.strip_prefix(&format!("{s}://")))
    else {
        let names = match schemes {
            ["http", "https"] => "http(s)".to_string(),
            _ => schemes.join("/"),
        };
        return Err(format!("{} is not an {names} URL", quote(u)));
    };
    if u.chars().any(|c| c.is_control()) {
        return Err("contains control characters".into());
    }
    double_encoded(u)?;
    let decoded = percent_decode(u).to_ascii_lowercase();
    if decoded.chars().any(|c| c.is_control()) {
        return Err("contains percent-encoded control characters".into());
    }
    if u.split('?').next().unwrap_or("").contains(' ') {
        return Err(format!("{} contains spaces", quote(u)));
    }
    if decoded.contains("%u") || decoded.contains("\\u") || decoded.contains("\\x") {
        return Err(format!(
            "{} contains escape sequences the gateway refuses",
            quote(u)
        ));
    }
    for p in [
        "javascript:",
        "data:",
        "vbscript:",
        "about:",
        "chrome:",
        "file:",
        "ftp:",
        "mailto:",
    ] {
        if decoded.contains(p) {
            return Err(format!(
                "{} contains {}, which the gateway refuses in URLs",
                quote(u),
                quote(p)
            ));
        }
    }
    if decoded.contains('[') || decoded.contains(']') {
        return Err(format!(
            "{}: the gateway does not take IPv6 address URLs",
            quote(u)
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("{} has no host", quote(u)));
    }
    if percent_decode(authority).contains('@') {
        return Err(format!(
            "{} carries user info; put credentials in auth_value",
            quote(u)
        ));
    }
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
    if host == "0.0.0.0" {
        return Err(format!("{}: the gateway refuses 0.0.0.0", quote(u)));
    }
    if !port.is_empty() && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!("{} has an invalid port", quote(u)));
    }
    if script_pattern(&decoded).is_some() || decoded.contains("<script") {
        return Err(format!(
            "{} contains script patterns the gateway refuses",
            quote(u)
        ));
    }
    Ok(())
}

/// Resource URIs (`validate_uri`): `[a-zA-Z0-9_-.:/?=&%{}]` only, no `..`, at most 255.
pub fn resource_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("must not be empty".into());
    }
    double_encoded(uri)?;
    if let Some(bad) = uri
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.:/?=&%{}".contains(*c)))
    {
        return Err(format!(
            "{} contains {}; the gateway allows ASCII letters, digits and _ - . : / ? = & % {{ }} only",
            quote(uri),
            quote(bad.encode_utf8(&mut [0; 4]))
        ));
    }
    let decoded = percent_decode(uri);
    if decoded
        .chars()
        .any(|c| c.is_control() || "<>\"'\\".contains(c))
    {
        return Err(format!(
            "{} encodes characters the gateway refuses",
            quote(uri)
        ));
    }
    if decoded.contains("..") {
        return Err(format!("{} contains '..'", quote(uri)));
    }
    at_most(uri, MAX_NAME, "allows resource URIs of")
}

/// Why the gateway would drop or alter a tag beyond its normal form, if it would.
pub fn tag(t: &str) -> Result<(), String> {
    if t.contains(',') {
        return Err(format!(
            "{} contains ',', which makes the gateway split it into several tags",
            quote(t)
        ));
    }
    let n = super::tag::normalize(t);
    let chars = len(&n);
    if !(MIN_TAG..=MAX_TAG).contains(&chars) {
        return Err(format!(
            "{} is {chars} characters in the gateway's form; it keeps tags of {MIN_TAG} to {MAX_TAG} and drops others silently",
            quote(t)
        ));
    }
    let ok_inner = n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:.".contains(c));
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok_inner || !ends(n.chars().next()) || !ends(n.chars().last()) {
        return Err(format!(
            "{} becomes {} in the gateway's form, which it drops silently: tags hold ASCII letters, digits and - : . and start and end with a letter or digit",
            quote(t),
            quote(&n)
        ));
    }
    Ok(())
}

/// Nesting of objects and arrays (a scalar is 0).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON field the gateway takes as an object (schemas, annotations), not too deep.
pub fn json_object(v: &Value) -> Result<(), String> {
    if !v.is_object() {
        return Err(format!("must be a JSON object, not {}", kind_of(v)));
    }
    let d = depth(v);
    if d > MAX_JSON_DEPTH {
        return Err(format!(
            "is nested {d} levels deep; the gateway allows at most {MAX_JSON_DEPTH}"
        ));
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A header line the gateway stores and later sends: CR, LF or NUL in it would split or cut
/// the request it is sent in.
pub fn header_value(v: &str) -> Result<(), String> {
    if v.contains(['\r', '\n', '\0']) {
        return Err("contains CR, LF or NUL, which would forge header lines".into());
    }
    Ok(())
}

/// Header names: the gateway takes letters, digits, `-` and `_`.
pub fn header_name(k: &str) -> Result<(), String> {
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "header name {} must hold ASCII letters, digits, - and _ only",
            quote(k)
        ));
    }
    Ok(())
}

/// Decrypted credentials, as the gateway would take them for `auth_type` (never quotes a
/// value).
pub fn credentials<'a>(
    auth_type: &str,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let pairs: Vec<(&str, &str)> = pairs.collect();
    if pairs.len() > MAX_AUTH_HEADERS {
        return Err(format!(
            "holds {} credential headers; the gateway allows at most {MAX_AUTH_HEADERS}",
            pairs.len()
        ));
    }
    for (k, v) in &pairs {
        header_name(k).map_err(|e| format!("credential {e}"))?;
        header_value(v).map_err(|e| format!("credential header {}: value {e}", quote(k)))?;
    }
    let authorization = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    let prefix = match auth_type {
        "basic" => "Basic ",
        "bearer" => "Bearer ",
        "authheaders" if pairs.is_empty() => {
            return Err("authheaders credentials hold no header".into());
        }
        _ => return Ok(()),
    };
    match authorization {
        Some((_, v)) if v.starts_with(prefix) => Ok(()),
        _ => Err(format!(
            "auth_type {auth_type} needs an 'Authorization: {}...' credential header",
            prefix.trim_end()
        )),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
