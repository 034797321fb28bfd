//! The export pages' form bodies: `application/x-www-form-urlencoded` pairs in order (a key
//! such as `entity` repeats).

use std::collections::HashMap;

/// A posted form: its pairs in order, and the last value of each key.
pub(crate) struct Posted {
    pairs: Vec<(String, String)>,
    pub(crate) fields: HashMap<String, String>,
}

impl Posted {
    pub(crate) fn parse(raw: &[u8]) -> Posted {
        let pairs = serde_urlencoded_pairs(raw);
        let fields = pairs.iter().cloned().collect();
        Posted { pairs, fields }
    }

    /// Every value of `key`, in order.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }
}

/// A form body's pairs, in order (a key may repeat).
pub(crate) fn serde_urlencoded_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url_pairs(std::str::from_utf8(raw).unwrap_or(""))
}

fn url_pairs(s: &str) -> Vec<(String, String)> {
    let decode = |t: &str| {
        let t = t.replace('+', " ");
        let bytes = t.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let (Some(h), Some(l)) = (
                    crate::core::digest::nibble(bytes[i + 1]),
                    crate::core::digest::nibble(bytes[i + 2]),
                )
            {
                out.push(h << 4 | l);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_pairs_keep_repeated_keys_and_decode() {
        let p = super::url_pairs("entity=tools%3Aa+b&entity=servers%3Ax&csrf=1");
        assert_eq!(p[0], ("entity".into(), "tools:a b".into()));
        assert_eq!(p[1].1, "servers:x");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn a_posted_form_keeps_every_value_of_a_key() {
        let p = super::Posted::parse(b"entity=servers%3Aops%2Ccore&entity=servers%3Ateam*&csrf=t");
        let all: Vec<&str> = p.all("entity").collect();
        assert_eq!(all, ["servers:ops,core", "servers:team*"]);
        assert!(p.has("csrf") && !p.has("dependencies"));
    }
}
