//! The import wizard's uploads: a document the browser sent, kept in memory under a random id
//! bound to the session that sent it (the next steps name the id, never re-send the document),
//! for an hour at most and 64 at once; and the wizard's form bodies.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::http::jobs::multipart;

/// How long an upload is kept (seconds).
pub const UPLOAD_TTL: u64 = 3600;
/// Uploads kept at once (the oldest go first).
pub const UPLOADS_KEPT: usize = 64;

/// One uploaded document, as text, with the name it came under.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The session's nonce: only that session reads it.
    owner: String,
    pub file: String,
    pub text: String,
    at: u64,
}

/// The uploads of every session.
#[derive(Default)]
pub struct Uploads {
    inner: Mutex<HashMap<String, Upload>>,
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source");
    crate::core::digest::hex(&b)
}

impl Uploads {
    /// Keep `text` for `owner`; its id.
    pub fn put(&self, owner: &str, file: &str, text: String, now: u64) -> String {
        let mut m = self.inner.lock().expect("uploads lock");
        m.retain(|_, u| now.saturating_sub(u.at) < UPLOAD_TTL);
        while m.len() >= UPLOADS_KEPT {
            let oldest = m
                .iter()
                .min_by_key(|(_, u)| u.at)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            m.remove(&oldest);
        }
        let id = random_id();
        m.insert(
            id.clone(),
            Upload {
                owner: owner.to_string(),
                file: file.to_string(),
                text,
                at: now,
            },
        );
        id
    }

    /// The upload `id` if `owner` sent it and it has not expired.
    pub fn get(&self, id: &str, owner: &str, now: u64) -> Option<Upload> {
        let m = self.inner.lock().expect("uploads lock");
        m.get(id)
            .filter(|u| u.owner == owner && now.saturating_sub(u.at) < UPLOAD_TTL)
            .cloned()
    }
}

/// What the upload form sent: its text fields, and the document (a chosen or dropped file
/// wins over the paste box) with its file name.
#[derive(Debug, Default)]
pub struct Sent {
    pub fields: HashMap<String, String>,
    pub document: Option<(String, String)>,
}

/// Read the upload form (`multipart/form-data`: `csrf`, a `file` part, a `document` text).
pub fn read_form(content_type: &str, body: &[u8]) -> Result<Sent, String> {
    let boundary = multipart::boundary(content_type)
        .ok_or("the upload form must be sent as multipart/form-data")?;
    let mut sent = Sent::default();
    let mut pasted = None;
    for p in multipart::parse(body, &boundary)? {
        let text =
            String::from_utf8(p.data).map_err(|_| format!("{} is not UTF-8 text", p.name))?;
        match (p.name.as_str(), p.filename) {
            ("file", Some(f)) if !text.trim().is_empty() => sent.document = Some((f, text)),
            ("file", _) => {}
            ("document", _) if !text.trim().is_empty() => pasted = Some(text),
            (name, _) => {
                sent.fields.insert(name.to_string(), text);
            }
        }
    }
    if sent.document.is_none() {
        sent.document = pasted.map(|t| ("pasted document".to_string(), t));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_read_back_only_by_its_session_and_not_after_its_hour() {
        let u = Uploads::default();
        let id = u.put("session-a", "x.json", "{}".into(), 100);
        assert_eq!(u.get(&id, "session-a", 200).unwrap().text, "{}");
        assert!(u.get(&id, "session-b", 200).is_none());
        assert!(u.get(&id, "session-a", 100 + UPLOAD_TTL).is_none());
        assert!(u.get("not-an-id", "session-a", 200).is_none());
    }

    #[test]
    fn the_oldest_upload_goes_when_the_store_is_full() {
        let u = Uploads::default();
        let first = u.put("s", "f", "1".into(), 10);
        for i in 0..UPLOADS_KEPT {
            u.put("s", "f", i.to_string(), 11 + i as u64);
        }
        assert!(u.get(&first, "s", 100).is_none());
    }

    fn form(parts: &[(&str, Option<&str>, &str)]) -> (String, Vec<u8>) {
        let mut body = String::new();
        for (name, file, data) in parts {
            body.push_str("--XyZ\r\n");
            match file {
                Some(f) => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\r\n"
                )),
                None => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            body.push_str(data);
            body.push_str("\r\n");
        }
        body.push_str("--XyZ--\r\n");
        (
            "multipart/form-data; boundary=XyZ".into(),
            body.into_bytes(),
        )
    }

    #[test]
    fn a_chosen_file_wins_over_the_paste_box_and_an_empty_file_part_is_no_file() {
        let (ct, body) = form(&[
            ("csrf", None, "tok"),
            ("file", Some("a.json"), "{\"a\":1}"),
            ("document", None, "{\"b\":2}"),
        ]);
        let s = read_form(&ct, &body).unwrap();
        assert_eq!(s.fields["csrf"], "tok");
        assert_eq!(s.document.unwrap(), ("a.json".into(), "{\"a\":1}".into()));
        let (ct, body) = form(&[("file", Some(""), ""), ("document", None, "{\"b\":2}")]);
        let s = read_form(&ct, &body).unwrap();
        assert_eq!(s.document.unwrap().1, "{\"b\":2}");
        let (ct, body) = form(&[("file", Some(""), ""), ("document", None, "  ")]);
        assert!(read_form(&ct, &body).unwrap().document.is_none());
        assert!(read_form("application/json", b"{}").is_err());
    }
}
