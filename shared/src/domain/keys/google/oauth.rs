//! Google's OAuth2 service-account flow: a JWT signed with the account's RSA key, exchanged
//! for a bearer access token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::adapters::http::{Repeat, send_with_retry};
use crate::adapters::secrets::AWSCURRENT;
use crate::domain::keys::error::KeyError;
use crate::domain::keys::provider::{ATTEMPTS, BACKOFF};
use crate::runtime::errors::error_chain;

pub(crate) const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Managing API keys needs the cloud-platform scope.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// The fields of a service-account key file that the flow needs. No `Debug`: it holds the
/// private key.
pub struct ServiceAccount {
    pub(crate) client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccount {
    /// Parses the key file JSON stored in `secret`; problems name the field, never its value.
    pub fn parse(secret: &str, json: &str) -> Result<ServiceAccount, KeyError> {
        let malformed = |problem: &str| KeyError::Malformed {
            secret: secret.to_owned(),
            stage: AWSCURRENT.to_owned(),
            problem: format!("not a Google service-account key file: {problem}"),
        };
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(json) else {
            return Err(malformed("not a JSON object"));
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|v| !v.trim().is_empty());
        if text("type") != Some("service_account") {
            return Err(malformed("type is not \"service_account\""));
        }
        Ok(ServiceAccount {
            client_email: text("client_email").ok_or_else(|| malformed("client_email is missing"))?.to_owned(),
            private_key: text("private_key").ok_or_else(|| malformed("private_key is missing"))?.to_owned(),
            private_key_id: text("private_key_id").map(str::to_owned),
            token_uri: text("token_uri").map(str::to_owned),
        })
    }

    /// The signed JWT assertion for `audience` (the token endpoint), valid for an hour.
    fn assertion(&self, secret: &str, audience: &str, now: u64) -> Result<String, KeyError> {
        let malformed = |problem: &str| KeyError::Malformed {
            secret: secret.to_owned(),
            stage: AWSCURRENT.to_owned(),
            problem: format!("private_key {problem}"),
        };
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({"iss": self.client_email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600});
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let key = PrivateKeyDer::from_pem_slice(self.private_key.as_bytes())
            .map_err(|_| malformed("is not a PEM private key"))?;
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
            .ok()
            .and_then(|key| key.choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256]))
            .ok_or_else(|| malformed("is not an RSA key that can sign RS256"))?;
        let signature = signer.sign(signing_input.as_bytes()).map_err(|_| malformed("could not sign the assertion"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Exchanges the service account's signed assertion for an access token. The token endpoint is
/// `token_url` when the secret sets one, else the key file's `token_uri`, else Google's.
pub async fn access_token(
    http: &reqwest::Client,
    account_secret: &str,
    account: &ServiceAccount,
    token_url: Option<&str>,
) -> Result<String, KeyError> {
    let url = token_url.or(account.token_uri.as_deref()).unwrap_or(DEFAULT_TOKEN_URL);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let body = format!("grant_type={GRANT_TYPE}&assertion={}", account.assertion(account_secret, url, now)?);
    let failed = |detail: String| KeyError::Upstream {
        secret: account_secret.to_owned(),
        operation: "issue an access token for the service account".to_owned(),
        detail,
    };
    let response = send_with_retry(
        || http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body.clone()),
        ATTEMPTS,
        BACKOFF,
        Repeat::Idempotent,
    )
    .await
    .map_err(|e| failed(error_chain(&e.without_url())))?;
    let status = response.status();
    if status != StatusCode::OK {
        let refusal: OAuthError = response.json().await.unwrap_or_default();
        return Err(failed(format!("{url} answered HTTP {status} {} {}", refusal.error, refusal.error_description)));
    }
    let token: TokenResponse =
        response.json().await.map_err(|_| failed(format!("{url} answered an unexpected body")))?;
    Ok(token.access_token)
}
