//! The one AWS configuration loader and the client constructors. `AWS_ENDPOINT_URL` is honoured
//! by aws-config itself; S3 additionally needs path-style addressing off AWS (moto).

use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Loads the shared SDK configuration once per cold start. With credentials in the environment
/// (Lambda puts the role's there) the default chain would take those first; naming that provider
/// skips building the rest of the chain (profile, web identity, container, instance metadata).
pub(crate) async fn load_sdk_config(region: &str, endpoint_url: Option<&str>, credentials_in_env: bool) -> SdkConfig {
    let credentials = credentials_in_env.then(aws_config::environment::EnvironmentVariableCredentialsProvider::new);
    load(Some(region), None, endpoint_url, credentials).await
}

/// The SDK configuration for an operator's command: `region` and `profile` as given on the
/// command line, otherwise the default chains (`AWS_REGION`, `AWS_PROFILE`, the shared config
/// files), and `us-east-1` when nothing names a region.
pub async fn load_cli_sdk_config(region: Option<&str>, profile: Option<&str>, endpoint_url: Option<&str>) -> SdkConfig {
    let sdk = load(region, profile, endpoint_url, None).await;
    match sdk.region() {
        Some(_) => sdk,
        None => sdk.into_builder().region(Region::from_static("us-east-1")).build(),
    }
}

/// The one loader: the default chains, with what the caller names instead.
async fn load(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint_url: Option<&str>,
    credentials: Option<aws_config::environment::EnvironmentVariableCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(LazyHttpClient::default());
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The SDK's default HTTPS client (hyper 1, rustls on aws-lc, proxies from the environment, as
/// `aws-smithy-runtime` builds it), one for every client of the configuration. Left to itself
/// the SDK gives each client its own and builds a connector for each as the client is
/// constructed, reading the system's roots at start-up; here the one connector (per timeout
/// setting) is built at the first request.
#[derive(Debug)]
struct LazyHttpClient(SharedHttpClient);

impl Default for LazyHttpClient {
    fn default() -> Self {
        LazyHttpClient(aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
            let mut connector =
                aws_smithy_http_client::ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }))
    }
}

impl HttpClient for LazyHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // No `validate_base_client_config`: the wrapped client's builds a connector just to throw it
    // away, which is what reads the roots as each client is constructed.

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The AWS clients a function may need, from one [`SdkConfig`]. Each is built the first time
/// it is asked for: a function uses two or three of the five, and building one costs a fraction
/// of a millisecond of its cold start. Clones share the clients.
#[derive(Clone, Debug)]
pub struct AwsClients(Arc<Clients>);

#[derive(Debug)]
struct Clients {
    sdk: SdkConfig,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
}

impl AwsClients {
    /// Every call the clients make is a span of the invocation's Sentry transaction.
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsClients(Arc::new(Clients {
            sdk: sdk.clone(),
            secrets: OnceLock::new(),
            sns: OnceLock::new(),
            s3: OnceLock::new(),
            dynamodb: OnceLock::new(),
            lambda: OnceLock::new(),
        }))
    }

    /// Clients built elsewhere (the test kit's record the calls they make).
    pub fn from_clients(
        sdk: &SdkConfig,
        secrets: aws_sdk_secretsmanager::Client,
        sns: aws_sdk_sns::Client,
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Self {
        let clients = AwsClients::new(sdk);
        let _ = clients.0.secrets.set(secrets);
        let _ = clients.0.sns.set(sns);
        let _ = clients.0.s3.set(s3);
        let _ = clients.0.dynamodb.set(dynamodb);
        clients
    }

    /// The same clients with a Lambda client built elsewhere (the test kit's records its calls).
    pub fn with_lambda(self, lambda: aws_sdk_lambda::Client) -> Self {
        let _ = self.0.lambda.set(lambda);
        self
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        let sdk = &self.0.sdk;
        let build = || {
            aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(TraceAwsCalls).build(),
            )
        };
        self.0.secrets.get_or_init(build).clone()
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        let sdk = &self.0.sdk;
        let build = || {
            aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(sdk).interceptor(TraceAwsCalls).build())
        };
        self.0.sns.get_or_init(build).clone()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.0.s3.get_or_init(|| s3_client(&self.0.sdk)).clone()
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let sdk = &self.0.sdk;
        let build = || {
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(TraceAwsCalls).build(),
            )
        };
        self.0.dynamodb.get_or_init(build).clone()
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let sdk = &self.0.sdk;
        let build = || {
            aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(sdk).interceptor(TraceAwsCalls).build(),
            )
        };
        self.0.lambda.get_or_init(build).clone()
    }
}

/// S3 with path-style addressing whenever a custom endpoint is configured: virtual-host
/// buckets do not resolve on a local endpoint and there is no environment switch for it.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .interceptor(TraceAwsCalls);
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Makes each AWS call a span (`aws.request`, `<Service>.<Operation>`) of the current Sentry
/// transaction, failed when the call fails.
#[derive(Debug)]
struct TraceAwsCalls;

/// The span of one call, from before it is serialised until it is done.
#[derive(Debug, Clone)]
struct CallSpan(sentry::TransactionOrSpan);

impl Storable for CallSpan {
    type Storer = StoreReplace<Self>;
}

impl Intercept for TraceAwsCalls {
    fn name(&self) -> &'static str {
        "TraceAwsCalls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let description = cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name()));
        if let Some(span) = description.and_then(|d| crate::runtime::trace::child_span("aws.request", &d)) {
            cfg.interceptor_state().store_put(CallSpan(span));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallSpan(span)) = cfg.load::<CallSpan>().cloned() {
            if !matches!(context.output_or_error(), Some(Ok(_))) {
                span.set_status(sentry::protocol::SpanStatus::InternalError);
            }
            span.finish();
        }
        Ok(())
    }
}

/// Renders an SDK error with its service error code and message, which the SDK's `Display`
/// alone hides behind "service error".
pub fn describe_sdk_error<E>(err: &aws_sdk_secretsmanager::error::SdkError<E>) -> String
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_secretsmanager::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                // An error the SDK could not model: the HTTP status is the best clue left.
                _ => format!("{} (HTTP {})", inner, service.raw().status().as_u16()),
            }
        }
        SdkError::TimeoutError(_) => "request timed out".to_owned(),
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            // The connector's own text is often just "io error": its causes say which.
            Some(conn) => format!("could not reach the service: {}", crate::runtime::errors::error_chain(conn)),
            None => "could not reach the service".to_owned(),
        },
        other => crate::runtime::errors::error_chain(other),
    }
}

/// The service error code of an SDK error, if the service answered with one.
pub fn sdk_error_code<E, R>(err: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_secretsmanager::error::SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}
