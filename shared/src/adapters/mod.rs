//! One module per outside system: AWS (the SDK configuration, S3, DynamoDB, Secrets Manager, SNS,
//! CloudWatch, ECS, Lambda), Sentry's REST API, HTTPS and TLS, PostgreSQL and its client tools.

pub mod aws;
pub mod cloudwatch;
pub mod deployed_code;
pub mod ecs;
pub mod http;
pub mod objects;
pub mod pgtools;
pub mod postgres;
pub mod secret_versions;
pub mod secrets;
pub mod sentry;
pub mod signed_api;
pub(crate) mod sns;
pub mod state;
pub mod tls;
