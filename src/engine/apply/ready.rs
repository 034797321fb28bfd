//! Everything before the first write, shared by every front door: validate the whole document
//! (with the gateway's view for references), observe the target, check the target key,
//! decrypt the document's credentials, prepare the steps.

use super::{Conflict, Observed, Options, Prepared, observe, prepare};
use crate::core::diff::CredentialMap;
use crate::core::document::Document;
use crate::core::document::validate::{Context, ValidationError, validate};
use crate::core::kind::Kind;
use crate::core::secrets::{CryptoError, Secret};
use crate::gateway::{Gateway, GatewayError};

/// The secrets of a run: the document's, and the target gateway's (the document's unless
/// given).
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub document: Option<Secret>,
    pub gateway: Option<Secret>,
}

impl Keys {
    pub fn new(document: Option<Secret>, gateway: Option<Secret>) -> Keys {
        let gateway = gateway.or_else(|| document.clone());
        Keys { document, gateway }
    }

    /// The document's credentials are re-encrypted for another key.
    pub fn rotates(&self) -> bool {
        match (&self.document, &self.gateway) {
            (Some(d), Some(g)) => d.fingerprint() != g.fingerprint(),
            _ => false,
        }
    }
}

/// A run that may start writing.
pub struct Ready {
    pub observed: Observed,
    pub credentials: CredentialMap,
    pub prepared: Prepared,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error(
        "{file} carries encrypted credentials: pass --secret (or set AUTH_ENCRYPTION_SECRET) with the key it was encrypted with"
    )]
    NoSecret { file: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(
        "the gateway's stored credentials ({count} of them, e.g. {kind} {name}) do not decrypt with the given key (fingerprint {fingerprint}): pass the target gateway's AUTH_ENCRYPTION_SECRET, as --rekey-secret when the document comes from another environment"
    )]
    GatewayKey {
        count: usize,
        kind: Kind,
        name: String,
        fingerprint: String,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Entities that exist and differ under the `fail` strategy: the whole run is refused
    /// before any write.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    let mut msg = format!(
        "{} conflict{} under conflict strategy fail; nothing was written:",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" }
    );
    for c in conflicts {
        msg.push_str(&format!("\n  {c}"));
    }
    msg
}

impl crate::core::error::Classify for ReadyError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            ReadyError::Gateway(g) => crate::core::error::Classify::class(g),
            ReadyError::Conflicts(_) => crate::core::error::ErrorClass::Conflict,
            _ => crate::core::error::ErrorClass::Invalid,
        }
    }
}

/// Check `whole` (the document as given) and prepare `desired` (what of it is to be applied)
/// against the gateway. Reads only.
pub async fn ready<G: Gateway>(
    client: &G,
    whole: &Document,
    desired: &Document,
    file: &str,
    keys: &Keys,
    opts: &Options,
) -> Result<Ready, ReadyError> {
    let e = &whole.entities;
    let has_credentials = e.tools.iter().any(|t| t.auth_value.is_some())
        || e.gateways.iter().any(|g| g.auth_value.is_some());
    if has_credentials && keys.document.is_none() {
        return Err(ReadyError::NoSecret {
            file: file.to_string(),
        });
    }
    let check = |live| {
        validate(
            whole,
            file,
            &Context {
                secret: keys.document.as_ref(),
                live,
            },
        )
    };
    // What needs no gateway is checked first; when that finds problems, the gateway is still
    // read so that reference problems are reported with them, all at once.
    if let Err(offline) = check(None) {
        let all = match client.live(&Kind::ALL).await {
            Ok(state) => {
                let live = super::live_ids(&state).into_keys().collect();
                check(Some(&live)).err().unwrap_or(offline)
            }
            Err(_) => offline,
        };
        return Err(all.into());
    }
    let observed = observe(
        client,
        desired,
        keys.gateway.as_ref(),
        opts.content_cache.as_deref(),
    )
    .await?;
    validate(
        whole,
        file,
        &Context {
            secret: None,
            live: Some(&observed.identities()),
        },
    )?;
    if let Some((kind, name)) = observed.unreadable.first()
        && observed.credentials.is_empty()
    {
        return Err(ReadyError::GatewayKey {
            count: observed.unreadable.len(),
            kind: *kind,
            name: name.clone(),
            fingerprint: keys
                .gateway
                .as_ref()
                .map(Secret::fingerprint)
                .unwrap_or_default(),
        });
    }
    prepared(desired, keys, observed, opts)
}

/// The same against a saved snapshot of the gateway (an export document) instead of the live
/// gateway: no request at all. The snapshot's credentials are decrypted with the gateway key.
pub fn ready_offline(
    whole: &Document,
    desired: &Document,
    file: &str,
    keys: &Keys,
    opts: &Options,
    snapshot: Document,
) -> Result<Ready, ReadyError> {
    let mut ids = std::collections::HashMap::new();
    for kind in Kind::ALL {
        for key in snapshot.entities.keys(kind) {
            let k = super::key_of(kind, key);
            ids.insert(k, format!("snapshot:{key}"));
        }
    }
    let live: std::collections::HashSet<(Kind, String)> = ids.keys().cloned().collect();
    validate(
        whole,
        file,
        &Context {
            secret: keys.document.as_ref(),
            live: Some(&live),
        },
    )?;
    let credentials = super::desired_credentials(&snapshot, keys.gateway.as_ref())?;
    let observed = Observed {
        document: snapshot,
        credentials,
        unreadable: Vec::new(),
        ids,
        resources: Default::default(),
    };
    prepared(desired, keys, observed, opts)
}

/// Decrypt the document's credentials and prepare the steps against what was observed.
/// Conflicts (the `fail` strategy) refuse the run here, so that no front door can go on to
/// write.
fn prepared(
    desired: &Document,
    keys: &Keys,
    observed: Observed,
    opts: &Options,
) -> Result<Ready, ReadyError> {
    let credentials = super::desired_credentials(desired, keys.document.as_ref())?;
    let prepared = prepare(desired, &credentials, &observed, opts);
    if !prepared.conflicts.is_empty() {
        return Err(ReadyError::Conflicts(prepared.conflicts));
    }
    Ok(Ready {
        observed,
        credentials,
        prepared,
    })
}

/// Who owns what a run creates: the token user's personal team, read only when something is
/// to be created for real.
pub async fn owner<G: Gateway>(
    client: &G,
    prepared: &Prepared,
    opts: &Options,
) -> Result<super::Owner, GatewayError> {
    let creates = prepared
        .steps
        .iter()
        .any(|s| s.action == super::StepAction::Create);
    Ok(super::Owner {
        team_id: if creates && !opts.dry_run {
            super::personal_team(client).await?
        } else {
            None
        },
    })
}
