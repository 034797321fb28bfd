//! A `ContextForgeGateway` and the Secrets it names, as the engine's [`Connect`].

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;

use super::Error;
use crate::core::secrets::Secret;
use crate::engine::apply::Keys;
use crate::engine::reconcile::Connect;
use crate::gateway::Auth;
use crate::k8s::crd::{ContextForgeGateway, SecretKeyRef};

/// One key of a Secret, as text. A missing Secret or key is an error naming both (never the
/// value).
pub async fn secret_value(api: &Api<K8sSecret>, r: &SecretKeyRef) -> Result<String, Error> {
    let missing = |why: &str| Error::Secret {
        name: r.name.clone(),
        key: r.key.clone(),
        why: why.to_string(),
    };
    let s = match api.get_opt(&r.name).await? {
        Some(s) => s,
        None => return Err(missing("no such Secret")),
    };
    let bytes = s
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            s.string_data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|v| v.clone().into_bytes())
        })
        .ok_or_else(|| missing("no such key"))?;
    let text = String::from_utf8(bytes).map_err(|_| missing("not UTF-8"))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// The connection `gw` describes, credentials read from its namespace's Secrets;
/// `document_key` is a config's own key for its documents' `auth_value`s.
pub async fn connect(
    secrets: &Api<K8sSecret>,
    gw: &ContextForgeGateway,
    document_key: Option<&SecretKeyRef>,
) -> Result<Connect, Error> {
    let s = &gw.spec;
    let auth = match (&s.auth.token_secret_ref, &s.auth.jwt) {
        (Some(t), _) => Auth::resolve(
            Some(secret_value(secrets, t).await?),
            None,
            None,
            String::new(),
            String::new(),
        ),
        (None, Some(j)) => Auth::resolve(
            None,
            Some(j.user.clone()),
            Some(secret_value(secrets, &j.signing_key_secret_ref).await?),
            j.audience
                .clone()
                .unwrap_or_else(|| crate::gateway::DEFAULT_JWT_AUDIENCE.into()),
            j.issuer
                .clone()
                .unwrap_or_else(|| crate::gateway::DEFAULT_JWT_ISSUER.into()),
        ),
        (None, None) => Err(crate::gateway::AuthError::Missing),
    }
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let gateway_key = match &s.encryption_secret_ref {
        Some(r) => Some(Secret::new(&secret_value(secrets, r).await?)),
        None => None,
    };
    let doc_key = match document_key {
        Some(r) => Some(Secret::new(&secret_value(secrets, r).await?)),
        None => gateway_key.clone(),
    };
    let ca_pem = match &s.ca_secret_ref {
        Some(r) => Some(secret_value(secrets, r).await?),
        None => None,
    };
    Ok(Connect {
        url: s.url.clone(),
        auth,
        keys: Keys::new(doc_key, gateway_key),
        rate_limit: Some(s.requests_per_minute.unwrap_or(450) as usize),
        ca_pem,
    })
}
