//! "General": the health checks passing for the app, the AI engine and the database (the state
//! health-checker keeps), the stack's security settings as deployed (the backup bucket's public
//! access block, default encryption and TLS-only policy; the Sentry webhook's signing secret),
//! and the items no stack can tell.

use ops_shared::health::{STATE_SK, TargetState, target_key};
use ops_shared::state::{DynamoState, StateStore};

use super::{GENERAL, Item, Sources, State};
use crate::deployed::{Functions, RUNBOOK_TARGETS};

pub async fn items(sources: &Sources<'_>, functions: &Functions, webhook_secret: State) -> Vec<Item> {
    let mut items = health(sources, functions).await;
    let s3 = ops_shared::aws::s3_client(sources.sdk);
    let bucket = sources.stack.bucket();
    items.push(Item::new(GENERAL, format!("bucket {bucket} blocks public access"), public_access(&s3, &bucket).await));
    items.push(Item::new(
        GENERAL,
        format!("bucket {bucket} encrypted with KMS by default"),
        encryption(&s3, &bucket).await,
    ));
    items.push(Item::new(
        GENERAL,
        format!("bucket {bucket} refuses requests without TLS"),
        tls_only(&s3, &bucket).await,
    ));
    items.push(Item::new(
        GENERAL,
        "Sentry webhook signs its requests (the signing secret set; its Function URL is public by design)",
        webhook(functions, webhook_secret),
    ));
    for (item, why) in NOT_CHECKABLE {
        items.push(Item::new(GENERAL, item, State::NotCheckable { why: why.to_owned() }));
    }
    items
}

const NOT_CHECKABLE: [(&str, &str); 4] = [
    ("CI/CD pipeline green", "the pipeline runs in the app's CI, which neither AWS nor this stack knows of"),
    ("load testing completed", "a load test is run and judged by people; nothing deployed records it"),
    ("security audit completed", "an audit is people's findings; the settings above are only its stack's part"),
    ("documentation up to date", "whether the documents say what is true is for a reader to judge"),
];

/// The checks the runbook names, among health-checker's targets as deployed: app and
/// ai-engine by name, the database as the postgres target.
async fn health(sources: &Sources<'_>, functions: &Functions) -> Vec<Item> {
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(sources.sdk), sources.stack.names().state_table());
    let mut items = Vec::new();
    for (label, name) in RUNBOOK_TARGETS {
        let result = match functions.runbook_target(label, name) {
            Ok(target) => passing(&state, &target.name).await,
            Err(state) => state,
        };
        items.push(Item::new(GENERAL, format!("health check passing: {label}"), result));
    }
    items
}

/// Up, and its last check passed, in the state health-checker keeps.
async fn passing(state: &DynamoState, target: &str) -> State {
    let fix = format!("see why in opsctl status, put it right, and let health-checker's next runs see {target} up");
    match state.get(&target_key(target), STATE_SK).await {
        Err(err) => State::could_not_check(format!("the health state of {target}: {err} (allow dynamodb:GetItem)")),
        Ok(None) => State::failed(format!("health-checker has recorded no check of {target}"), fix),
        Ok(Some(found)) => match serde_json::from_value::<TargetState>(found.data) {
            Err(err) => State::could_not_check(format!("the health state of {target} is not one this reads: {err}")),
            Ok(s) if s.down => State::failed(
                format!("{target} is down: {}", s.last_error.as_deref().unwrap_or("no error recorded")),
                fix,
            ),
            Ok(s) if s.consecutive_failures > 0 => State::failed(
                format!(
                    "{target}'s last {} check(s) failed: {}",
                    s.consecutive_failures,
                    s.last_error.as_deref().unwrap_or("no error recorded")
                ),
                fix,
            ),
            Ok(_) => State::Ok,
        },
    }
}

async fn public_access(s3: &aws_sdk_s3::Client, bucket: &str) -> State {
    let fix = format!(
        "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration \
         BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    );
    let config = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(answer) => answer.public_access_block_configuration().cloned(),
        Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("NoSuchPublicAccessBlockConfiguration") => None,
        Err(err) => return unreadable("s3:GetBucketPublicAccessBlock", bucket, &err),
    };
    let Some(c) = config else {
        return State::failed(format!("{bucket} has no public access block"), fix);
    };
    let settings = [
        ("BlockPublicAcls", c.block_public_acls()),
        ("IgnorePublicAcls", c.ignore_public_acls()),
        ("BlockPublicPolicy", c.block_public_policy()),
        ("RestrictPublicBuckets", c.restrict_public_buckets()),
    ];
    let off: Vec<&str> = settings.iter().filter(|(_, on)| *on != Some(true)).map(|(name, _)| *name).collect();
    if off.is_empty() { State::Ok } else { State::failed(format!("{bucket}: {} off", off.join(", ")), fix) }
}

async fn encryption(s3: &aws_sdk_s3::Client, bucket: &str) -> State {
    let fix = format!(
        "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration \
         '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\
         \"KMSMasterKeyID\":\"<the stack's BackupKey ARN>\"}},\"BucketKeyEnabled\":true}}]}}'"
    );
    let algorithms: Vec<String> = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(answer) => answer
            .server_side_encryption_configuration()
            .map(|c| c.rules())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_owned())
            .collect(),
        Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            Vec::new()
        }
        Err(err) => return unreadable("s3:GetEncryptionConfiguration", bucket, &err),
    };
    if algorithms.iter().any(|a| a.starts_with("aws:kms")) {
        return State::Ok;
    }
    let has = if algorithms.is_empty() { "none".to_owned() } else { algorithms.join(", ") };
    State::failed(format!("{bucket}'s default encryption is {has}, not the stack's KMS key (aws:kms)"), fix)
}

async fn tls_only(s3: &aws_sdk_s3::Client, bucket: &str) -> State {
    let fix = format!(
        "aws s3api put-bucket-policy --bucket {bucket} --policy file://policy.json (the statements of template.yaml's \
         BackupBucketPolicy, TlsOnly first)"
    );
    let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(answer) => answer.policy().unwrap_or_default().to_owned(),
        Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("NoSuchBucketPolicy") => String::new(),
        Err(err) => return unreadable("s3:GetBucketPolicy", bucket, &err),
    };
    let document: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
    if denies_plain_http(&document) {
        return State::Ok;
    }
    State::failed(format!("{bucket}'s policy has no statement denying s3:* when aws:SecureTransport is false"), fix)
}

/// A statement `Deny` of `s3:*` (or `*`) to everyone when `aws:SecureTransport` is false.
pub fn denies_plain_http(policy: &serde_json::Value) -> bool {
    let statements = match policy.get("Statement") {
        Some(serde_json::Value::Array(all)) => all.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    statements.iter().any(|s| {
        let text = |v: Option<&serde_json::Value>| v.map(|v| v.to_string().trim_matches('"').to_owned());
        let actions = s.get("Action").map(serde_json::Value::to_string).unwrap_or_default();
        let principal = text(s.get("Principal")).unwrap_or_default();
        let secure = s.pointer("/Condition/Bool/aws:SecureTransport");
        text(s.get("Effect")).as_deref() == Some("Deny")
            && (actions.contains("\"s3:*\"") || actions.contains("\"*\""))
            && (principal == "*" || principal.contains("\"AWS\":\"*\""))
            && text(secure).as_deref() == Some("false")
    })
}

/// The webhook function reads a signing secret, and that secret passed check-env's checks.
fn webhook(functions: &Functions, secret: State) -> State {
    let env = match functions.env("sentry-webhook") {
        Ok(env) => env,
        Err(state) => return state,
    };
    if env.get("SENTRY_WEBHOOK_SECRET_ARN").is_none() {
        return State::failed(
            format!(
                "{}-sentry-webhook has no SENTRY_WEBHOOK_SECRET_ARN: it could not tell Sentry's requests from anyone's",
                functions.prefix
            ),
            format!("sam deploy --parameter-overrides NamePrefix={}", functions.prefix),
        );
    }
    secret
}

fn unreadable<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static>(
    call: &str,
    bucket: &str,
    err: &aws_sdk_s3::error::SdkError<E>,
) -> State {
    State::could_not_check(format!("{call} of {bucket}: {}", ops_shared::aws::describe_sdk_error(err)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::denies_plain_http;

    #[test]
    fn only_a_deny_of_plain_http_to_everyone_counts() {
        let statement = |effect: &str, secure: serde_json::Value| {
            json!({"Statement": [{"Effect": effect, "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                "Condition": {"Bool": {"aws:SecureTransport": secure}}}]})
        };
        assert!(denies_plain_http(&statement("Deny", json!("false"))));
        assert!(denies_plain_http(&statement("Deny", json!(false))));
        assert!(!denies_plain_http(&statement("Allow", json!("false"))));
        assert!(!denies_plain_http(&statement("Deny", json!("true"))));
        assert!(!denies_plain_http(&json!({})));
    }
}
