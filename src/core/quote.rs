//! Safe quoting of values that come from users, documents or peers into error and log lines:
//! cut to a readable length and with control characters escaped, so that a 10 MB name gives a
//! short line and a name holding a newline or a terminal escape cannot forge lines or clear
//! the screen.

use std::fmt::{self, Write};

/// Characters of a quoted value shown before it is cut.
pub const QUOTE_CHARS: usize = 80;
/// Characters of a foreign message (a parser's, a peer's) shown before it is cut.
pub const MESSAGE_CHARS: usize = 300;
/// Characters of one line of a whole error shown before it is cut.
pub const LINE_CHARS: usize = 1000;

/// `value` in single quotes, escaped, cut after [`QUOTE_CHARS`] characters:
/// `'aaaa…' (10485760 bytes)`.
pub fn quote(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// A value quoted for a message; see [`quote`].
#[derive(Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('\'')?;
        let cut = escape_into(f, self.0, QUOTE_CHARS, false)?;
        f.write_char('\'')?;
        if cut {
            write!(f, " ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A whole message (a parser's or a gateway's error text, which may repeat values) made safe
/// for one line: control characters escaped, newlines too unless `keep_newlines`, cut after
/// [`MESSAGE_CHARS`] characters.
pub fn clean(message: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_CHARS + 32));
    let cut =
        escape_into(&mut out, message, MESSAGE_CHARS, keep_newlines).expect("writing to a String");
    if cut {
        let _ = write!(out, " ({} bytes)", message.len());
    }
    out
}

/// A whole error or log message for a terminal: every line escaped and cut after
/// [`LINE_CHARS`] characters; the line breaks themselves are kept.
pub fn clean_lines(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(64 * 1024));
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let cut = escape_into(&mut out, line, LINE_CHARS, false).expect("writing to a String");
        if cut {
            let _ = write!(out, " ({} bytes)", line.len());
        }
    }
    out
}

/// Whether a character is escaped: C0/C1 controls and DEL, and the invisible format
/// characters that reorder or break lines on a terminal (bidi overrides, line separators).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Write `s` escaped, at most `max` characters of it; returns whether it was cut (then `…`
/// was written).
fn escape_into<W: Write>(
    w: &mut W,
    s: &str,
    max: usize,
    keep_newlines: bool,
) -> Result<bool, fmt::Error> {
    for (n, c) in s.chars().enumerate() {
        if n == max {
            w.write_char('…')?;
            return Ok(true);
        }
        match c {
            '\n' if keep_newlines => w.write_char('\n')?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if is_unsafe(c) => write!(w, "\\u{{{:x}}}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("weather-api").to_string(), "'weather-api'");
        assert_eq!(quote("").to_string(), "''");
    }

    #[test]
    fn long_values_are_cut_with_their_size() {
        let big = "n".repeat(10 * 1024 * 1024);
        let q = quote(&big).to_string();
        assert_eq!(q, format!("'{}…' (10485760 bytes)", "n".repeat(80)));
        // Multi-byte characters are counted as characters and never split.
        let wide = "é".repeat(100);
        assert_eq!(
            quote(&wide).to_string(),
            format!("'{}…' (200 bytes)", "é".repeat(80))
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let q = quote("a\nb\r\x1b[2J\u{7f}\u{9b}\u{202e}z").to_string();
        assert_eq!(q, "'a\\nb\\r\\u{1b}[2J\\u{7f}\\u{9b}\\u{202e}z'");
        assert!(!q.chars().any(is_unsafe));
    }

    #[test]
    fn whole_messages_keep_their_lines() {
        let long = "y".repeat(LINE_CHARS + 5);
        let got = clean_lines(&format!("a\x1b[2J\n{long}"));
        let lines: Vec<&str> = got.split('\n').collect();
        assert_eq!(lines[0], "a\\u{1b}[2J");
        assert!(lines[1].ends_with(&format!("… ({} bytes)", long.len())));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn messages_keep_newlines_only_when_asked() {
        assert_eq!(clean("a\nb\x1b", false), "a\\nb\\u{1b}");
        assert_eq!(clean("a\nb\x1b", true), "a\nb\\u{1b}");
        let long = "x".repeat(MESSAGE_CHARS + 1);
        assert!(clean(&long, false).ends_with(&format!("… ({} bytes)", long.len())));
    }
}
