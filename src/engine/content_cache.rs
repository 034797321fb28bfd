//! The content cache's file: [`crate::core::content_cache::Contents`] kept in one JSON file
//! (the daemon's state directory, or the user's cache directory for the CLI), read once,
//! written atomically (directory 0700, file 0600) when something new was read. A file that
//! cannot be read or parsed is ignored with a warning and replaced on the next save: the
//! cache can only save reads, never fail a run. It holds resource content and, for tools and
//! peer gateways, the credential *as the gateway stores it* (encrypted with the gateway's
//! `AUTH_ENCRYPTION_SECRET`, which the cache never holds): never a plaintext secret.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::collections::HashMap;

use crate::core::content_cache::Contents;
use crate::core::error::{Classify, ErrorClass};
use crate::core::kind::Kind;
use crate::gateway::live::LiveState;
use crate::gateway::{Gateway, GatewayError};

/// The file's name inside its directory.
pub const FILE_NAME: &str = "content-cache.json";

#[derive(Debug, thiserror::Error)]
#[error("cannot write the content cache {path}: {source}")]
pub struct CacheError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl Classify for CacheError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Io
    }
}

#[derive(Debug, Default)]
struct State {
    contents: Contents,
    dirty: bool,
}

/// Remembered content, shared by the tasks of one process.
#[derive(Debug, Default)]
pub struct ContentCache {
    /// None: in memory only (`--no-cache`, or no cache directory).
    file: Option<PathBuf>,
    state: Mutex<State>,
}

impl ContentCache {
    /// A cache that remembers nothing beyond this process and writes no file.
    pub fn off() -> ContentCache {
        ContentCache::default()
    }

    /// The cache in `dir` (created 0700 on save). The second value is a warning when the
    /// file was there but could not be used.
    pub fn open(dir: &Path) -> (ContentCache, Option<String>) {
        let path = dir.join(FILE_NAME);
        let (contents, warning) = match std::fs::read(&path) {
            Ok(bytes) => match Contents::from_json(&bytes) {
                Ok(c) => (c, None),
                Err(e) => (
                    Contents::default(),
                    Some(format!(
                        "ignoring the content cache {} (unreadable: {e}); it will be rebuilt",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Contents::default(), None),
            Err(e) => (
                Contents::default(),
                Some(format!(
                    "ignoring the content cache {} ({e}); it will be rebuilt",
                    path.display()
                )),
            ),
        };
        let cache = ContentCache {
            file: Some(path),
            state: Mutex::new(State {
                contents,
                dirty: false,
            }),
        };
        (cache, warning)
    }

    /// The CLI's cache directory: `$XDG_CACHE_HOME/mcp-gitops`, else `~/.cache/mcp-gitops`;
    /// None when neither variable is set.
    pub fn user_dir() -> Option<PathBuf> {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        nonempty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("mcp-gitops"))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The content read of this entity when the gateway reported this version and update
    /// time, if it still reports them.
    pub fn get(
        &self,
        gateway: &str,
        kind: Kind,
        id: &str,
        version: Option<i64>,
        updated_at: Option<&str>,
    ) -> Option<String> {
        self.state()
            .contents
            .get(gateway, kind, id, version, updated_at)
            .map(str::to_string)
    }

    /// Remember content just read at this version and update time.
    pub fn put(
        &self,
        gateway: &str,
        kind: Kind,
        id: &str,
        version: Option<i64>,
        updated_at: Option<&str>,
        content: &str,
    ) {
        let mut s = self.state();
        if s.contents
            .put(gateway, kind, id, version, updated_at, content)
        {
            s.dirty = true;
        }
    }

    /// Forget this gateway's entities of `kind` that it no longer has.
    pub fn retain_live(&self, gateway: &str, kind: Kind, live: &[&str]) {
        let mut s = self.state();
        if s.contents.retain_live(gateway, kind, live) {
            s.dirty = true;
        }
    }

    /// Write the file if something new was remembered.
    pub fn save(&self) -> Result<(), CacheError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut s = self.state();
        if !s.dirty {
            return Ok(());
        }
        let err = |source| CacheError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(err)?;
        }
        // The temporary file `write_atomic` renames into place is created 0600.
        crate::core::fsutil::write_atomic(path, &s.contents.to_json()).map_err(err)?;
        s.dirty = false;
        Ok(())
    }
}

/// The version and update time the gateway reports for an entity.
type Seen<'a> = (Option<i64>, Option<&'a str>);

/// The encrypted stored credentials of `tools` and `gateways` (given as (id, name)), by
/// (kind, id), as [`Gateway::stored_credentials`] answers them. With a cache, a credential
/// remembered at the version and update time `live` reports for the entity, and that `usable`
/// accepts (it decrypts under the gateway's key), is not read again; the others are read in
/// one go and remembered. The gateway moves an entity's version and update time whenever its
/// credential changes, so a remembered one is never stale.
pub async fn stored_credentials<G: Gateway>(
    client: &G,
    live: &LiveState,
    cache: Option<&ContentCache>,
    tools: &[(&str, &str)],
    gateways: &[(&str, &str)],
    usable: impl Fn(&str) -> bool,
) -> Result<HashMap<(Kind, String), String>, GatewayError> {
    let Some(cache) = cache else {
        return client.stored_credentials(tools, gateways).await;
    };
    let gateway = client.url();
    let mut seen: HashMap<(Kind, &str), Seen<'_>> = HashMap::new();
    for t in &live.tools {
        seen.insert((Kind::Tool, &t.id), (t.version, t.updated_at.as_deref()));
    }
    for g in &live.gateways {
        seen.insert((Kind::Gateway, &g.id), (g.version, g.updated_at.as_deref()));
    }
    let at = |kind: Kind, id: &str| seen.get(&(kind, id)).copied().unwrap_or_default();
    let mut out = HashMap::new();
    let mut missing: [Vec<(&str, &str)>; 2] = [Vec::new(), Vec::new()];
    for (i, (kind, list)) in [(Kind::Tool, tools), (Kind::Gateway, gateways)]
        .into_iter()
        .enumerate()
    {
        for &(id, name) in list {
            let (version, updated_at) = at(kind, id);
            match cache.get(gateway, kind, id, version, updated_at) {
                Some(value) if usable(&value) => {
                    out.insert((kind, id.to_string()), value);
                }
                _ => missing[i].push((id, name)),
            }
        }
    }
    if !(missing[0].is_empty() && missing[1].is_empty()) {
        let read = client.stored_credentials(&missing[0], &missing[1]).await?;
        for ((kind, id), value) in read {
            let (version, updated_at) = at(kind, &id);
            cache.put(gateway, kind, &id, version, updated_at, &value);
            out.insert((kind, id), value);
        }
    }
    for kind in [Kind::Tool, Kind::Gateway] {
        let ids: Vec<&str> = seen
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .collect();
        cache.retain_live(gateway, kind, &ids);
    }
    if let Err(e) = cache.save() {
        tracing::warn!("{e}");
    }
    Ok(out)
}

/// `dir` (and its parents), the directory itself 0700.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const GW: &str = "http://127.0.0.1:1";

    #[test]
    fn saved_private_and_read_back() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("cache/mcp-gitops");
        let (c, w) = ContentCache::open(&dir);
        assert!(w.is_none());
        c.put(GW, Kind::Resource, "r1", Some(2), Some("t"), "body");
        c.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        let (again, w) = ContentCache::open(&dir);
        assert!(w.is_none());
        assert_eq!(
            again.get(GW, Kind::Resource, "r1", Some(2), Some("t")),
            Some("body".into())
        );
    }

    #[test]
    fn a_corrupt_file_is_ignored_with_a_warning_and_replaced() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(FILE_NAME), b"\0garbage").unwrap();
        let (c, w) = ContentCache::open(t.path());
        assert!(w.unwrap().contains("ignoring the content cache"));
        assert_eq!(c.get(GW, Kind::Resource, "r1", Some(1), None), None);
        c.put(GW, Kind::Resource, "r1", Some(1), None, "x");
        c.save().unwrap();
        let (c, w) = ContentCache::open(t.path());
        assert!(w.is_none());
        assert_eq!(
            c.get(GW, Kind::Resource, "r1", Some(1), None),
            Some("x".into())
        );
    }

    fn export_options(
        secret: &crate::core::secrets::Secret,
        cache: &std::sync::Arc<ContentCache>,
    ) -> crate::engine::export::ExportOptions {
        crate::engine::export::ExportOptions {
            selection: Default::default(),
            gateway_secret: secret.clone(),
            document_secret: None,
            exported_by: None,
            now: "2026-12-02T00:00:00Z".into(),
            cache: Some(cache.clone()),
        }
    }

    #[tokio::test]
    async fn credentials_are_read_again_only_when_the_version_moves_or_the_key_fails() {
        use crate::core::secrets::{Credentials, Secret};
        use crate::engine::export::export;
        use crate::gateway::fake::{FakeGateway, Op};
        use serde_json::json;

        let secret = Secret::new("gateway-key");
        let creds = |v: &str| Credentials::from_pairs([("Authorization".into(), v.into())]);
        let gw = FakeGateway::new();
        let id = gw.insert(
            Kind::Tool,
            json!({"name": "t1", "url": "https://a.example.com/x", "requestType": "GET",
                   "integrationType": "REST", "auth": {"authType": "bearer"}}),
        );
        gw.set_credential(Kind::Tool, &id, &secret.encrypt(&creds("Bearer canary-1")));
        let t = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(ContentCache::open(t.path()).0);
        let reads = |gw: &FakeGateway| {
            gw.log()
                .iter()
                .filter(|o| **o == Op::ReadCredentials)
                .count()
        };
        let value = |doc: &crate::core::document::Document| {
            let v = doc.entities.tools[0].auth_value.clone().unwrap();
            secret
                .decrypt(&v)
                .unwrap()
                .get("Authorization")
                .unwrap()
                .to_string()
        };

        let first = export(&gw, &export_options(&secret, &cache)).await.unwrap();
        assert_eq!(reads(&gw), 1);
        let second = export(&gw, &export_options(&secret, &cache)).await.unwrap();
        assert_eq!(
            reads(&gw),
            1,
            "remembered at the same version: not read again"
        );
        assert_eq!(value(&first.document), "Bearer canary-1");
        assert_eq!(value(&second.document), "Bearer canary-1");
        let file = std::fs::read_to_string(t.path().join(FILE_NAME)).unwrap();
        assert!(
            !file.contains("canary-1"),
            "only the gateway's ciphertext is kept"
        );

        // A changed credential moves the version on: read again, never stale.
        gw.set_credential(Kind::Tool, &id, &secret.encrypt(&creds("Bearer canary-2")));
        let third = export(&gw, &export_options(&secret, &cache)).await.unwrap();
        assert_eq!(reads(&gw), 2);
        assert_eq!(value(&third.document), "Bearer canary-2");

        // A remembered value the gateway's key does not open is read again.
        let version = gw.get(Kind::Tool, "t1").unwrap()["version"].as_i64();
        let other = Secret::new("another-key").encrypt(&creds("Bearer planted"));
        cache.put(gw.url(), Kind::Tool, &id, version, None, &other);
        let fourth = export(&gw, &export_options(&secret, &cache)).await.unwrap();
        assert_eq!(reads(&gw), 3);
        assert_eq!(value(&fourth.document), "Bearer canary-2");

        // Without a cache every export reads.
        let mut off = export_options(&secret, &cache);
        off.cache = None;
        export(&gw, &off).await.unwrap();
        assert_eq!(reads(&gw), 4);
    }

    #[test]
    fn off_writes_nothing() {
        let c = ContentCache::off();
        c.put(GW, Kind::Resource, "r1", Some(1), None, "x");
        c.save().unwrap();
        assert_eq!(
            c.get(GW, Kind::Resource, "r1", Some(1), None),
            Some("x".into())
        );
    }
}
