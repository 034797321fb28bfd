//! A `multipart/form-data` body already read into memory, split into its named parts (what an
//! import upload or the bulk tool form sends: a file and a few text fields).

/// One part: its form field name, its file name if a file, its bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn param(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`, or why it is not a well-formed multipart body.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut at = find(body, delim.as_bytes(), 0).ok_or("no multipart boundary in the body")?;
    let mut parts = Vec::new();
    loop {
        at += delim.len();
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        let head_start = at + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or("a part without headers")?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let next_delim = format!("\r\n{delim}");
        let data_end =
            find(body, next_delim.as_bytes(), head_end + 4).ok_or("a part that never ends")?;
        let disposition = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| v.to_string())
            })
            .ok_or("a part without Content-Disposition")?;
        parts.push(Part {
            name: param(&disposition, "name").unwrap_or_default(),
            filename: param(&disposition, "filename"),
            data: body[head_end + 4..data_end].to_vec(),
        });
        at = data_end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_split_by_name_with_files_kept_whole() {
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let b = boundary(ct).expect("boundary");
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"conflict_strategy\"\r\n\r\nskip\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.json\"\r\nContent-Type: application/json\r\n\r\n{\"a\":\r\n1}\r\n--XyZ--\r\n";
        let parts = parse(body.as_bytes(), &b).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "conflict_strategy");
        assert_eq!(parts[0].data, b"skip");
        assert_eq!(parts[1].filename.as_deref(), Some("export.json"));
        assert_eq!(parts[1].data, b"{\"a\":\r\n1}");
        assert!(boundary("application/json").is_none());
        assert!(
            parse(
                b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno end",
                "XyZ"
            )
            .is_err()
        );
        assert!(parse(b"nothing", "XyZ").is_err());
    }
}
