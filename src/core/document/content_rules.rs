//! The gateway's rules for prompt templates and resource content (ContextForge 1.0.7
//! `SecurityValidator.validate_template`, `ResourceCreate.validate_content` and
//! `services/content_security.py` with its default `CONTENT_*` settings): sizes, the HTML and
//! template-injection checks, and the patterns it refuses as malicious content.

use super::rules::{MAX_CONTENT_BYTES, MAX_TEMPLATE_BYTES};
use crate::core::quote::quote;

/// Prompt templates: size, the gateway's HTML and template-injection checks.
pub fn template(t: &str) -> Result<(), String> {
    if t.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "is {} bytes; the gateway allows templates of at most {MAX_TEMPLATE_BYTES} bytes",
            t.len()
        ));
    }
    let lower = t.to_ascii_lowercase();
    for tag in [
        "script", "iframe", "object", "embed", "link", "meta", "base", "form",
    ] {
        if tag_at_word(&lower, tag) {
            return Err(format!("contains a <{tag}> tag, which the gateway refuses"));
        }
    }
    if event_handler(&lower) {
        return Err("contains an event-handler-like 'on...=', which the gateway refuses".into());
    }
    for (open, close) in [("{{", "}}"), ("{%", "%}")] {
        for expr in expressions(t, open, close)? {
            let e = expr.to_ascii_lowercase().replace(' ', "");
            const WORDS: &[&str] = &[
                "__",
                ".",
                "config",
                "self",
                "request",
                "application",
                "globals",
                "builtins",
                "import",
                "getattr",
                "|attr",
                "|selectattr",
                "|sort",
                "|map",
                "attribute=",
                "\\x",
                "\\u",
                "\\n{",
                "\\0",
                "\\1",
                "\\2",
                "\\3",
                "\\4",
                "\\5",
                "\\6",
                "\\7",
            ];
            if let Some(w) = WORDS.iter().find(|w| e.contains(*w)) {
                return Err(format!(
                    "the expression {} contains {}, which the gateway refuses in templates",
                    quote(&format!("{open}{expr}{close}")),
                    quote(w)
                ));
            }
            if let Some(op) = ["*", "/", "+", "-", "~", "[", "%"]
                .iter()
                .find(|o| expr.contains(*o))
            {
                return Err(format!(
                    "the expression {} uses the operator {}, which the gateway refuses in templates",
                    quote(&format!("{open}{expr}{close}")),
                    quote(op)
                ));
            }
        }
    }
    if let Some(last) = t.rfind('}')
        && let Some(p) = ["${", "#{", "%{"]
            .iter()
            .find(|p| t.find(*p).is_some_and(|i| i < last))
    {
        return Err(format!(
            "contains {}...}}, which the gateway refuses",
            quote(p)
        ));
    }
    content_patterns(t)
}

/// `<tag` followed by a non-word character or the end.
fn tag_at_word(lower: &str, tag: &str) -> bool {
    let pat = format!("<{tag}");
    lower.match_indices(&pat).any(|(i, _)| {
        lower[i + pat.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// `on\w+\s*=`.
fn event_handler(s: &str) -> bool {
    s.match_indices("on").any(|(i, _)| {
        let rest = &s[i + 2..];
        let after = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        after.len() < rest.len() && after.trim_start().starts_with('=')
    })
}

/// The contents of `open ... close` expressions, skipping delimiters inside quotes; an
/// unterminated expression is refused, as the gateway does.
fn expressions<'a>(t: &'a str, open: &str, close: &str) -> Result<Vec<&'a str>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(start) = t[i..].find(open).map(|s| s + i) {
        let body = start + open.len();
        let (mut quote_char, mut escaped, mut end) = (None, false, None);
        for (j, c) in t[body..].char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if let Some(q) = quote_char {
                if c == q {
                    quote_char = None;
                }
            } else if c == '\'' || c == '"' {
                quote_char = Some(c);
            } else if t[body + j..].starts_with(close) {
                end = Some(body + j);
                break;
            }
        }
        let Some(end) = end else {
            return Err(format!(
                "has an unterminated {open} expression, which the gateway refuses"
            ));
        };
        out.push(&t[body..end]);
        i = end + close.len();
    }
    Ok(out)
}

/// The gateway's malicious-content patterns (`CONTENT_BLOCKED_PATTERNS`), for prompt
/// templates and resource content.
pub fn content_patterns(s: &str) -> Result<(), String> {
    let lower = s.to_ascii_lowercase();
    let refuse = |what: &str| {
        Err(format!(
            "contains {what}, which the gateway refuses as malicious content"
        ))
    };
    if s.contains("javascript:") {
        return refuse("'javascript:'");
    }
    if event_handler(s) {
        return refuse("an event-handler-like 'on...='");
    }
    if s.contains("<iframe") || (s.contains("<script") && s.contains("</script>")) {
        return refuse("a <script> or <iframe> tag");
    }
    if let Some(p) = ["&&", "||"].into_iter().find(|p| s.contains(p)) {
        return refuse(&quote(p).to_string());
    }
    if s.split('`').count() > 2 && s.split('`').nth(1).is_some_and(|m| !m.is_empty()) {
        return refuse("a `...` command");
    }
    if s.match_indices("$(")
        .any(|(i, _)| s[i + 2..].find(')').is_some_and(|j| j > 0))
    {
        return refuse("a $(...) command");
    }
    if s.match_indices("${").any(|(i, _)| s[i..].contains('}')) {
        return refuse("a ${...} expression");
    }
    for kw in ["union", "select", "insert", "update", "delete", "drop"] {
        if lower
            .match_indices(kw)
            .any(|(i, _)| lower[i + kw.len()..].starts_with(char::is_whitespace))
        {
            return refuse(&format!("the SQL keyword '{kw}' followed by a space"));
        }
    }
    if s.strip_suffix('\n').unwrap_or(s).trim_end().ends_with("--") {
        return refuse("a trailing '--'");
    }
    let squeezed: String = lower.split_whitespace().collect();
    if squeezed.contains("'or'1'='1") || squeezed.contains(";rm-rf") {
        return refuse("an injection pattern");
    }
    for p in ["{{config}}", "{{config."] {
        if squeezed.contains(p) {
            return refuse(&quote(p).to_string());
        }
    }
    Ok(())
}

/// Resource content: size and the gateway's dangerous-HTML pattern.
pub fn content(c: &str) -> Result<(), String> {
    if c.len() > MAX_CONTENT_BYTES {
        return Err(format!(
            "is {} bytes; the gateway allows resource content of at most {MAX_CONTENT_BYTES} bytes",
            c.len()
        ));
    }
    let lower = c.to_ascii_lowercase();
    const TAGS: &[&str] = &[
        "script", "iframe", "object", "embed", "link", "meta", "base", "form", "img", "svg",
        "video", "audio", "source", "track", "area", "map", "canvas", "applet", "frame",
        "frameset", "html", "head", "body", "style",
    ];
    for tag in TAGS {
        let closing = lower.match_indices('<').any(|(i, _)| {
            lower[i + 1..]
                .trim_start_matches('/')
                .strip_prefix(tag)
                .is_some_and(|r| r.starts_with('>'))
        });
        if tag_at_word(&lower, tag) || closing {
            return Err(format!(
                "contains a <{tag}> tag, which the gateway refuses in resource content"
            ));
        }
    }
    content_patterns(c)
}
