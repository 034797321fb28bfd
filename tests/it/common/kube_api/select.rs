//! Label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`) and field
//! selectors (`metadata.name` and `metadata.namespace` with `=`, `==`, `!=`).

use serde_json::Value;

#[derive(Debug, Clone)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector plus a field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

/// Split on commas outside parentheses.
fn terms(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("bad set {values:?}"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse_term(t: &str) -> Result<Req, String> {
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Req::Ne(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once(" notin ") {
        return Ok(Req::NotIn(k.trim().into(), set(v)?));
    }
    if let Some((k, v)) = t.split_once(" in ") {
        return Ok(Req::In(k.trim().into(), set(v)?));
    }
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Req::Absent(k.trim().into()));
    }
    if t.contains([' ', '(', ')']) {
        return Err(format!("unable to parse requirement {t:?}"));
    }
    Ok(Req::Exists(t.into()))
}

fn holds(req: &Req, get: &dyn Fn(&str) -> Option<String>) -> bool {
    match req {
        Req::Eq(k, v) => get(k).as_deref() == Some(v),
        Req::Ne(k, v) => get(k).as_deref() != Some(v),
        Req::Exists(k) => get(k).is_some(),
        Req::Absent(k) => get(k).is_none(),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
    }
}

impl Selector {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Selector, String> {
        let labels = terms(labels.unwrap_or(""))
            .iter()
            .map(|t| parse_term(t))
            .collect::<Result<Vec<_>, _>>()?;
        let fields = terms(fields.unwrap_or(""))
            .iter()
            .map(|t| match parse_term(t)? {
                r @ (Req::Eq(..) | Req::Ne(..)) => Ok(r),
                _ => Err(format!("unsupported field selector {t:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for f in &fields {
            let (Req::Eq(k, _) | Req::Ne(k, _)) = f else {
                unreachable!()
            };
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(format!("field label not supported: {k}"));
            }
        }
        Ok(Selector { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        let label = |k: &str| meta["labels"][k].as_str().map(str::to_string);
        let field = |k: &str| {
            let f = k.strip_prefix("metadata.").unwrap_or(k);
            Some(meta[f].as_str().unwrap_or_default().to_string())
        };
        self.labels.iter().all(|r| holds(r, &label)) && self.fields.iter().all(|r| holds(r, &field))
    }
}
