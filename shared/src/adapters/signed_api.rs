//! AWS APIs called without an SDK client: a POST signed with SigV4 ("Signing AWS API
//! requests") from the SDK configuration's region and credentials, sent to its endpoint
//! override or the service's regional endpoint. CloudWatch's Query API and ECS's `RunTask` use
//! it: a call or two each, where a whole SDK client would cost build time and package size.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningError, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::adapters::http::{Repeat, send_with_retry};
use crate::runtime::errors::error_chain;

const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a signed call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SignedCallError {
    #[error("no AWS credentials")]
    NoCredentials,
    #[error("{}", error_chain(.0))]
    Credentials(aws_credential_types::provider::error::CredentialsError),
    #[error("no AWS region configured (AWS_REGION)")]
    NoRegion,
    #[error("{0}")]
    Signing(Box<dyn std::error::Error + Send + Sync>),
    #[error("endpoint {endpoint}: {error}")]
    Endpoint { endpoint: String, error: SigningError },
    #[error("{}", error_chain(.0))]
    Request(reqwest::Error),
}

/// A service's endpoint with what signs requests to it.
#[derive(Clone, Debug)]
pub struct SignedApi {
    http: reqwest::Client,
    endpoint: String,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    signing_name: &'static str,
}

impl SignedApi {
    /// `sdk`'s region, credentials and endpoint: its override, or `https://<host>.<region>.amazonaws.com`
    /// (`.com.cn` in China). A missing region or credentials fail each call, naming what is missing.
    pub fn new(sdk: &SdkConfig, http: reqwest::Client, host: &str, signing_name: &'static str) -> SignedApi {
        let region = sdk.region().map(|r| r.to_string());
        let endpoint = match (sdk.endpoint_url(), &region) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(region)) if region.starts_with("cn-") => format!("https://{host}.{region}.amazonaws.com.cn"),
            (None, Some(region)) => format!("https://{host}.{region}.amazonaws.com"),
            (None, None) => String::new(),
        };
        SignedApi { http, endpoint, region, credentials: sdk.credentials_provider(), signing_name }
    }

    /// The credentials to sign with, fetched once per use (a profile's may cost a round trip).
    pub async fn identity(&self) -> Result<Identity, SignedCallError> {
        let provider = self.credentials.as_ref().ok_or(SignedCallError::NoCredentials)?;
        let credentials = provider.provide_credentials().await.map_err(SignedCallError::Credentials)?;
        Ok(Identity::from(credentials))
    }

    /// POSTs `body` with `headers` (content type included), signed; the answer's status and
    /// body, whatever the status. `repeat` says which failures may be sent again.
    pub async fn post(
        &self,
        identity: &Identity,
        headers: &[(&str, &str)],
        body: String,
        repeat: Repeat,
    ) -> Result<(u16, String), SignedCallError> {
        let region = self.region.as_deref().ok_or(SignedCallError::NoRegion)?;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(region)
            .name(self.signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SignedCallError::Signing(e.into()))?
            .into();
        let signable =
            SignableRequest::new("POST", &self.endpoint, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
                .map_err(|error| SignedCallError::Endpoint { endpoint: self.endpoint.clone(), error })?;
        let (signature, _) = sign(signable, &params).map_err(|e| SignedCallError::Signing(e.into()))?.into_parts();
        let request = || {
            let mut request = self.http.post(&self.endpoint);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            for (name, value) in signature.headers() {
                request = request.header(name, value);
            }
            request.body(body.clone())
        };
        let response = send_with_retry(request, 3, RETRY_BACKOFF, repeat).await.map_err(SignedCallError::Request)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(SignedCallError::Request)?;
        Ok((status, text))
    }
}
