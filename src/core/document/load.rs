//! Reading documents (JSON or YAML, from a file or stdin) and writing them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Document;
use super::shape::{self, UnknownType};
use crate::core::quote::clean;

/// A serialisation format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// Every format's name, as `--format` spells it.
    pub const NAMES: [&'static str; 2] = ["json", "yaml"];

    /// `json` or `yaml`.
    pub fn parse_name(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "yaml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// The format a path's extension implies (`.yaml`/`.yml` → YAML), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Some(Format::Yaml),
            Some("json") => Some(Format::Json),
            _ => None,
        }
    }

    /// The format to read a file named `path` with: by its content (JSON when it starts with
    /// `{` or `[`, else YAML), except that a `.yaml`/`.yml` file is always read as YAML (which
    /// also reads JSON, and YAML's flow style starts with `{` too). So a YAML document in a
    /// `.json` file still reads.
    pub fn for_reading(path: &Path) -> Option<Format> {
        Format::from_path(path).filter(|f| *f == Format::Yaml)
    }

    /// Guess from the content: JSON documents start with `{` or `[`.
    fn sniff(text: &str) -> Format {
        match text.trim_start().chars().next() {
            Some('{' | '[') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Why a document could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid {format}: {reason}")]
    Syntax {
        file: String,
        format: &'static str,
        reason: String,
    },
    #[error(
        "{file}: larger than the input limit of {} (raise it with --max-input or MCP_GITOPS_MAX_INPUT)",
        show_size(*limit)
    )]
    TooLarge { file: String, limit: u64 },
    #[error("{file}: {pointer}: {reason}")]
    Shape {
        file: String,
        /// JSON pointer to the offending value.
        pointer: String,
        reason: String,
    },
    /// Keys of `entities` that name no entity type (ContextForge's import refuses them too).
    #[error("{}", unknown_list(file, types))]
    UnknownTypes {
        file: String,
        types: Vec<UnknownType>,
    },
}

fn unknown_list(file: &str, types: &[UnknownType]) -> String {
    match types {
        [one] => format!("{file}: {one}"),
        _ => {
            let mut s = format!("{file}: {} unknown entity types", types.len());
            for t in types {
                s.push_str(&format!("\n  {file}: {t}"));
            }
            s
        }
    }
}

/// Read a document from a path, `-` meaning standard input.
pub fn load_path(path: &Path) -> Result<Document, LoadError> {
    let (name, text) = read_text(path)?;
    from_str(&text, Format::for_reading(path), &name)
}

/// The default of the most that is read from one input file or standard input: 256 MiB.
pub const DEFAULT_MAX_INPUT: u64 = 256 << 20;

static MAX_INPUT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_INPUT);

/// Set the most that [`read_text`] reads from one file or standard input (the CLI's
/// `--max-input`, for the whole process).
pub fn set_max_input(bytes: u64) {
    MAX_INPUT.store(bytes, Ordering::Relaxed);
}

/// The most that [`read_text`] reads.
pub fn max_input() -> u64 {
    MAX_INPUT.load(Ordering::Relaxed)
}

/// A size: bytes, or with a binary suffix `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (`256M`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("'{s}' is not a size (bytes, or with K, M or G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (bytes, or with K, M or G)"))?;
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{s}' is out of range (1 byte to 16 EiB)"))
}

fn show_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// `len` bytes named `file` are within the input limit (for input that is already in memory,
/// e.g. a file read out of Git).
pub fn check_size(file: &str, len: u64) -> Result<(), LoadError> {
    let limit = max_input();
    if len > limit {
        return Err(LoadError::TooLarge {
            file: file.to_string(),
            limit,
        });
    }
    Ok(())
}

/// Read a file (or stdin for `-`) to a string, with the display name to use in errors: at most
/// [`max_input`] bytes (more is an error; nothing beyond the limit is read). Every input
/// document, environment file and configuration file is read here.
pub fn read_text(path: &Path) -> Result<(String, String), LoadError> {
    read_text_limited(path, max_input())
}

fn read_text_limited(path: &Path, limit: u64) -> Result<(String, String), LoadError> {
    let name = display_name(path);
    let too_large = || LoadError::TooLarge {
        file: name.clone(),
        limit,
    };
    let io = |source| LoadError::Io {
        file: name.clone(),
        source,
    };
    let mut bytes = Vec::new();
    let cap = limit.saturating_add(1);
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        let f = std::fs::File::open(path).map_err(io)?;
        if let Ok(m) = f.metadata()
            && m.is_file()
            && m.len() > limit
        {
            return Err(too_large());
        }
        f.take(cap).read_to_end(&mut bytes).map_err(io)?;
    }
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    Ok((name, text))
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        PathBuf::from(path).display().to_string()
    }
}

/// Parse text as a value of type `T`. `format` None means: guess from the content.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    format: Option<Format>,
    file: &str,
) -> Result<T, LoadError> {
    let format = format.unwrap_or_else(|| Format::sniff(text));
    if format == Format::Json {
        // One pass straight into `T` (no intermediate value): large documents load fast.
        let mut de = serde_json::Deserializer::from_str(text);
        let syntax = |e: serde_json::Error| LoadError::Syntax {
            file: file.to_string(),
            format: "JSON",
            reason: clean(&e.to_string(), false),
        };
        let v = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
            if e.inner().is_data() {
                LoadError::Shape {
                    file: file.to_string(),
                    pointer: clean(&to_pointer(&e.path().to_string()), false),
                    reason: clean(&without_position(&e.inner().to_string()), false),
                }
            } else {
                syntax(e.into_inner())
            }
        })?;
        de.end().map_err(syntax)?;
        return Ok(v);
    }
    from_value(parse_value(text, Some(format), file)?, file)
}

/// A parsed value as a `T`; shape errors carry the file and the JSON pointer.
pub fn from_value<T: DeserializeOwned>(value: Value, file: &str) -> Result<T, LoadError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| LoadError::Shape {
        file: file.to_string(),
        pointer: clean(&to_pointer(&e.path().to_string()), false),
        reason: clean(&e.inner().to_string(), false),
    })
}

/// serde_json's data errors end in " at line L column C"; the pointer says where.
fn without_position(reason: &str) -> String {
    match reason.rfind(" at line ") {
        Some(i) if reason[i..].contains(" column ") => reason[..i].to_string(),
        _ => reason.to_string(),
    }
}

/// Parse text into a JSON value (YAML is read into the JSON data model).
pub fn parse_value(text: &str, format: Option<Format>, file: &str) -> Result<Value, LoadError> {
    match format.unwrap_or_else(|| Format::sniff(text)) {
        Format::Json => serde_json::from_str(text).map_err(|e| LoadError::Syntax {
            file: file.to_string(),
            format: "JSON",
            reason: clean(&e.to_string(), false),
        }),
        Format::Yaml => serde_saphyr::from_str::<Value>(text).map_err(|e| LoadError::Syntax {
            file: file.to_string(),
            format: "YAML",
            reason: clean(e.to_string().lines().next().unwrap_or_default(), false),
        }),
    }
}

/// Parse a document from text: every key of `entities` must name a type; server links to
/// resources by name become URIs.
pub fn from_str(text: &str, format: Option<Format>, file: &str) -> Result<Document, LoadError> {
    checked(parse(text, format, file)?, file)
}

/// A document from a parsed value.
pub fn document_from_value(value: Value, file: &str) -> Result<Document, LoadError> {
    checked(from_value(value, file)?, file)
}

fn checked(mut doc: Document, file: &str) -> Result<Document, LoadError> {
    if doc.version.trim().is_empty() {
        return Err(LoadError::Shape {
            file: file.to_string(),
            pointer: "/version".into(),
            reason: "must not be empty".into(),
        });
    }
    let unknown = shape::unknown_types(&doc);
    if !unknown.is_empty() {
        return Err(LoadError::UnknownTypes {
            file: file.to_string(),
            types: unknown,
        });
    }
    shape::resource_links_by_uri(&mut doc);
    Ok(doc)
}

/// Serialise a value: pretty JSON with a final newline, or YAML.
pub fn to_string<T: Serialize>(value: &T, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(value).expect("documents serialise");
            s.push('\n');
            s
        }
        Format::Yaml => serde_saphyr::to_string(value).expect("documents serialise"),
    }
}

/// `entities.tools[3].name` (serde_path_to_error's form) → `/entities/tools/3/name`.
fn to_pointer(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for seg in path.split('.') {
        let mut rest = seg;
        // a segment may carry indices: tools[3][1]
        let head_end = rest.find('[').unwrap_or(rest.len());
        let head = &rest[..head_end];
        if !head.is_empty() {
            out.push('/');
            out.push_str(&head.replace('~', "~0").replace('/', "~1"));
        }
        rest = &rest[head_end..];
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').unwrap_or(stripped.len());
            out.push('/');
            out.push_str(&stripped[..end]);
            rest = stripped.get(end + 1..).unwrap_or("");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_bounded() {
        let e = read_text_limited(Path::new("/dev/zero"), 4096).unwrap_err();
        assert!(matches!(e, LoadError::TooLarge { limit: 4096, .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "/dev/zero: larger than the input limit of 4 KiB (raise it with --max-input or MCP_GITOPS_MAX_INPUT)"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc.json");
        std::fs::write(&p, "x".repeat(100)).unwrap();
        assert_eq!(read_text_limited(&p, 100).unwrap().1.len(), 100);
        let e = read_text_limited(&p, 99).unwrap_err();
        assert!(matches!(e, LoadError::TooLarge { limit: 99, .. }), "{e}");
        assert!(e.to_string().contains("limit of 99 bytes"), "{e}");
    }

    #[test]
    fn documents_are_read_by_content_unless_named_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "version: '2025-03-26'\nentities:\n  roots:\n    - uri: file:///data\n      name: data\n";
        let json = r#"{"version":"2025-03-26","entities":{"roots":[{"uri":"file:///data","name":"data"}]}}"#;
        let flow =
            "{version: '2025-03-26', entities: {roots: [{uri: 'file:///data', name: data}]}}";
        let mut docs = Vec::new();
        for (file, text) in [
            ("yaml-in.json", yaml),
            ("json-in.yaml", json),
            ("flow.yml", flow),
            ("plain.json", json),
            ("no-extension", yaml),
        ] {
            let p = dir.path().join(file);
            std::fs::write(&p, text).unwrap();
            docs.push(load_path(&p).unwrap_or_else(|e| panic!("{file}: {e}")));
        }
        assert!(docs.windows(2).all(|w| w[0] == w[1]));
        // Broken JSON is still reported as JSON.
        let p = dir.path().join("broken.json");
        std::fs::write(&p, "{\"version\": ").unwrap();
        let e = load_path(&p).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256M"), Ok(DEFAULT_MAX_INPUT));
        assert_eq!(parse_size("256MiB"), Ok(DEFAULT_MAX_INPUT));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "M", "12X", "-1", "0", "99999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(show_size(DEFAULT_MAX_INPUT), "256 MiB");
    }

    #[test]
    fn pointers_from_paths() {
        assert_eq!(
            to_pointer("entities.tools[3].name"),
            "/entities/tools/3/name"
        );
        assert_eq!(to_pointer("version"), "/version");
        assert_eq!(to_pointer("."), "");
    }

    #[test]
    fn shape_errors_carry_file_and_pointer() {
        let err = from_str(
            r#"{"version":"1","entities":{"tools":[{"name":"a","url":"u"},{"name":5,"url":"u"}]}}"#,
            None,
            "doc.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "doc.json: /entities/tools/1/name: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn yaml_and_json_read_the_same() {
        let json = r#"{"version":"2025-03-26","entities":{"roots":[{"uri":"file:///data","name":"data"}]}}"#;
        let yaml = "version: '2025-03-26'\nentities:\n  roots:\n    - uri: file:///data\n      name: data\n";
        assert_eq!(
            from_str(json, None, "a").unwrap(),
            from_str(yaml, None, "b").unwrap()
        );
    }

    #[test]
    fn unknown_entity_types_are_refused_with_pointer_and_suggestion() {
        for (text, format) in [
            (
                r#"{"version":"1","entities":{"tool":[{"name":"a","url":"https://x.example/a"}]}}"#,
                None,
            ),
            (
                "version: '1'\nentities:\n  tool:\n    - {name: a, url: 'https://x.example/a'}\n",
                Some(Format::Yaml),
            ),
        ] {
            let err = from_str(text, format, "d.json").unwrap_err();
            assert_eq!(
                err.to_string(),
                "d.json: /entities/tool: unknown entity type 'tool' (did you mean `tools`?); known types: tools, gateways, servers, prompts, resources, roots"
            );
        }
        let err = from_str(
            r#"{"version":"1","entities":{"widgets":[],"tools":[],"a2a_agents":[]}}"#,
            None,
            "d.json",
        )
        .unwrap_err();
        let LoadError::UnknownTypes { types, .. } = &err else {
            panic!("{err}")
        };
        let pointers: Vec<&str> = types.iter().map(|t| t.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["/entities/widgets", "/entities/a2a_agents"]);
        assert!(
            err.to_string()
                .starts_with("d.json: 2 unknown entity types\n"),
            "{err}"
        );
    }

    #[test]
    fn entity_shape_errors_keep_their_pointer_and_duplicates_are_refused() {
        let err = from_str(
            r#"{"version":"1","entities":{"prompts":[{"name":"p","template":7}]}}"#,
            None,
            "d.json",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("d.json: /entities/prompts/0/template: invalid type"),
            "{err}"
        );
        let err = from_str(
            r#"{"version":"1","entities":{"roots":[],"roots":[]}}"#,
            None,
            "d.json",
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate field `roots`"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = from_str("{not json", Some(Format::Json), "bad.json").unwrap_err();
        assert!(
            err.to_string().starts_with("bad.json: not valid JSON:"),
            "{err}"
        );
        let err = from_str(r#"{"version":""}"#, None, "v.json").unwrap_err();
        assert_eq!(err.to_string(), "v.json: /version: must not be empty");
    }
}
