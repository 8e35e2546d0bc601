//! Test-side AWS helpers: what a user would look at (queues subscribed to topics, objects,
//! secret stages), built per test on the test's own runtime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde::Deserialize;

use crate::stack::Stack;

/// A name unique to this test run: `prefix-<8 hex>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub async fn create_state_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash).map_err(|e| e.to_string())?)
        .key_schema(key("sk", KeyType::Range).map_err(|e| e.to_string())?)
        .attribute_definitions(attr("pk").map_err(|e| e.to_string())?)
        .attribute_definitions(attr("sk").map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("create table {name}: {e:?}"))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| format!("enable TTL on {name}: {e:?}"))?;
    Ok(())
}

/// Clients for one test.
pub struct Aws {
    pub sdk: SdkConfig,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Aws {
    pub async fn new(stack: &Stack) -> Aws {
        Aws::from_sdk(stack.sdk_config().await)
    }

    /// Clients with `sdk`'s credentials and endpoint.
    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Aws {
        Aws {
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            s3: ops_shared::aws::s3_client(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sdk,
        }
    }

    pub async fn create_topic(&self, name: &str) -> String {
        let out = self.sns.create_topic().name(name).send().await.expect("create topic");
        out.topic_arn.expect("topic arn")
    }

    /// An SQS queue subscribed to `topic_arn`, as an email subscription would be: what ops
    /// would receive ends up there, in SNS's envelope.
    pub async fn subscribe_queue(&self, topic_arn: &str) -> Inbox {
        let name = unique("inbox");
        let url =
            self.sqs.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.expect("queue url");
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let arn = attrs
            .attributes
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        self.sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(arn).send().await.expect("subscribe");
        Inbox { sqs: self.sqs.clone(), url }
    }
}

/// An SNS notification as delivered to a subscriber.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    #[serde(rename = "Subject")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "MessageAttributes", default)]
    pub attributes: HashMap<String, AttributeValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttributeValue {
    /// `String`, `String.Array`, `Number` or `Binary`.
    #[serde(rename = "Type")]
    pub data_type: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl Notification {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(|a| a.value.as_str())
    }

    pub fn alert(&self) -> ops_shared::Alert {
        serde_json::from_str(&self.message).expect("notification body is an alert")
    }
}

pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Inbox {
    /// Everything delivered within `wait` (returns early once `expect` messages arrived).
    pub async fn receive(&self, expect: usize, wait: Duration) -> Vec<Notification> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < wait {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = batch.messages.unwrap_or_default();
            for message in &messages {
                if let Some(body) = &message.body {
                    out.push(serde_json::from_str(body).expect("SNS envelope"));
                }
                if let Some(handle) = &message.receipt_handle {
                    self.sqs.delete_message().queue_url(&self.url).receipt_handle(handle).send().await.expect("delete");
                }
            }
            if messages.is_empty() {
                if out.len() >= expect {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        out
    }
}

impl Aws {
    /// Reaches the state Secrets Manager leaves before it invokes a rotation function: rotation
    /// enabled and a value-less version under a new token labelled AWSPENDING. moto stages it,
    /// then fails to invoke the rotation Lambda (unknown here), which is expected.
    pub async fn start_rotation(&self, secret: &str) -> Result<String, String> {
        start_rotation(&self.secrets, secret, 90).await
    }

    /// Writes `value` into the pending version `token`, as a hand-run PutSecretValue would.
    pub async fn put_pending_value(&self, secret: &str, token: &str, value: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(ops_shared::secrets::AWSPENDING)
            .send()
            .await
            .expect("put the pending value");
    }

    /// What Secrets Manager does after finishSecret succeeds: AWSPENDING leaves the new version.
    pub async fn end_rotation(&self, secret: &str, token: &str) -> Result<(), String> {
        end_rotation(&self.secrets, secret, token).await
    }
}

/// [`Aws::start_rotation`] with a rotation interval of `days`.
pub async fn start_rotation(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    days: i64,
) -> Result<String, String> {
    let token = uuid::Uuid::new_v4().to_string();
    let result = secrets
        .rotate_secret()
        .secret_id(secret)
        .client_request_token(&token)
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:not-deployed-here")
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder().automatically_after_days(days).build(),
        )
        .send()
        .await;
    match result {
        Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("ResourceNotFoundException") => Ok(token),
        Err(err) => Err(format!("RotateSecret failed: {}", ops_shared::aws::describe_sdk_error(&err))),
        Ok(_) => Err("moto unexpectedly invoked a rotation Lambda".to_owned()),
    }
}

async fn end_rotation(secrets: &aws_sdk_secretsmanager::Client, secret: &str, token: &str) -> Result<(), String> {
    secrets
        .update_secret_version_stage()
        .secret_id(secret)
        .version_stage(ops_shared::secrets::AWSPENDING)
        .remove_from_version_id(token)
        .send()
        .await
        .map_err(|e| format!("clear AWSPENDING: {}", ops_shared::aws::describe_sdk_error(&e)))?;
    Ok(())
}

/// The runbook's secrets under `prefix`, as an operator would set them up: the right shapes,
/// tags and rotation cadences (critical 90 days, API keys 180). Values are local fixtures.
pub async fn provision_runbook_secrets(
    secrets: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    database: &str,
) -> Result<(), String> {
    use aws_sdk_secretsmanager::types::Tag;
    let api = |key: &str, extra: serde_json::Value| {
        let mut value = serde_json::json!({"api_key": key, "key_id": uuid::Uuid::new_v4().to_string()});
        if let (Some(map), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
            map.extend(more);
        }
        value.to_string()
    };
    let admin = format!("{prefix}-ai-engine-admin-token");
    let supabase_token = format!("{prefix}-supabase-access-token");
    let google_account = format!("{prefix}-google-service-account");
    // (name, value, rotation strategy and interval in days)
    type Entry<'a> = (String, String, Option<(&'a str, i64)>);
    let entries: [Entry; 8] = [
        (
            format!("{prefix}-supabase-service-role"),
            api(
                "sb_secret_local_fixture_0000000000",
                serde_json::json!({"project_ref": "abcdefghijklmnopqrst", "token_secret_arn": supabase_token}),
            ),
            Some(("supabase-api-key", 90)),
        ),
        (
            format!("{prefix}-ai-engine-api"),
            api(
                "aie_local_fixture_0000000000",
                serde_json::json!({"admin_url": "http://127.0.0.1:9/admin", "check_url": "http://127.0.0.1:9/v1/ping",
                    "admin_secret_arn": admin}),
            ),
            Some(("http-api-key", 180)),
        ),
        (
            format!("{prefix}-gemini-api"),
            api(
                "AQ.LocalFixture000000000000000",
                serde_json::json!({"project": "cineview-local", "service_account_secret_arn": google_account,
                    "key_id": "projects/cineview-local/locations/global/keys/initial"}),
            ),
            Some(("google-api-key", 180)),
        ),
        (admin.clone(), uuid::Uuid::new_v4().simple().to_string(), None),
        (supabase_token.clone(), format!("sbp_{}", uuid::Uuid::new_v4().simple()), None),
        (
            google_account.clone(),
            serde_json::json!({"type": "service_account",
                "client_email": format!("key-rotation@{prefix}.iam.gserviceaccount.com"),
                "private_key": "local fixture, not a key"})
            .to_string(),
            None,
        ),
        (format!("{prefix}-database"), database.to_owned(), None),
        (format!("{prefix}-sentry-webhook"), uuid::Uuid::new_v4().simple().to_string(), None),
    ];
    for (name, value, rotation) in entries {
        let mut request = secrets.create_secret().name(&name).secret_string(value);
        if let Some((strategy, _)) = rotation {
            request = request.tags(Tag::builder().key("rotation-strategy").value(strategy).build());
        }
        request
            .send()
            .await
            .map_err(|e| format!("create secret {name}: {}", ops_shared::aws::describe_sdk_error(&e)))?;
        if let Some((_, days)) = rotation {
            let token = start_rotation(secrets, &name, days).await?;
            end_rotation(secrets, &name, &token).await?;
        }
    }
    Ok(())
}

/// The steps of a rotation, in the order Secrets Manager calls them.
pub const ROTATION_STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

impl Aws {
    /// Drives one rotation of `secret` through `step` as Secrets Manager would, except that the
    /// function dies after the first `crash_after` steps and the whole rotation is replayed
    /// (0: no crash). Returns the rotation's token; panics naming a step that failed.
    pub async fn rotate_with<F, Fut, T, E>(&self, secret: &str, crash_after: usize, step: F) -> String
    where
        F: Fn(&'static str, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Debug,
    {
        let token = self.start_rotation(secret).await.expect("start the rotation");
        for name in &ROTATION_STEPS[..crash_after] {
            step(name, token.clone()).await.unwrap_or_else(|e| panic!("{name} before the crash: {e:?}"));
        }
        for name in ROTATION_STEPS {
            step(name, token.clone()).await.unwrap_or_else(|e| panic!("{name} (crash after {crash_after}): {e:?}"));
        }
        self.end_rotation(secret, &token).await.expect("end the rotation");
        token
    }

    /// A Lambda function named `name` whose code is `code` (moto keeps it, never runs it), with
    /// an execution role of its own; returns the `CodeSha256` Lambda reports for it.
    pub async fn create_function(&self, name: &str, code: &[u8]) -> Result<String, String> {
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let role = aws_sdk_iam::Client::new(&self.sdk)
            .create_role()
            .role_name(unique("function-role"))
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| format!("create the role of {name}: {e:?}"))?
            .role
            .map(|r| r.arn)
            .ok_or("moto returned no role")?;
        let created = aws_sdk_lambda::Client::new(&self.sdk)
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role)
            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(code.to_vec().into()).build())
            .send()
            .await
            .map_err(|e| format!("create function {name}: {e:?}"))?;
        created.code_sha256.ok_or_else(|| format!("no CodeSha256 for {name}"))
    }

    /// A secret holding `value`, tagged for rotation `strategy`.
    pub async fn create_rotated_secret(&self, name: &str, value: &str, strategy: &str) -> Result<(), String> {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .tags(aws_sdk_secretsmanager::types::Tag::builder().key("rotation-strategy").value(strategy).build())
            .send()
            .await
            .map_err(|e| format!("create secret {name}: {}", ops_shared::aws::describe_sdk_error(&e)))?;
        Ok(())
    }
}
