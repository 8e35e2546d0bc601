//! IAM enforced on the local stack: each function runs with the role SAM creates for it from
//! template.yaml (translated by aws-sam-translator, see `tests/sam_roles.py`), so a call its
//! role does not allow is refused as AWS would refuse it.
//!
//! moto enforces IAM once `/moto-api/reset-auth` sets its count of unauthenticated requests:
//! from then on every request must be signed by a user or an assumed role it knows, and the
//! action must be allowed by that principal's policies. What moto checks, and so what these
//! tests prove: the actions. It matches `Resource` only for S3 (bucket and key ARNs), SQS, IAM
//! and STS; any other service asks for `*`, so statements for those are given `Resource: *`
//! here. It ignores `Condition` operators other than `StringEquals` (and evaluates those
//! against no request values), so conditions are not proven either.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use ops_shared::aws::AwsClients;
use ops_shared::secrets::EnvFallback;
use ops_shared::{CommonConfig, Env, Scrubber, SecretCache, SnsAlertPublisher, Startup};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::aws::{Aws, unique};
use crate::names::{ACCOUNT_ID, REGION};
use crate::stack::block_on_own_runtime;

/// The user the tests themselves act as once IAM is enforced (fixtures, inboxes, roles).
pub const ADMIN_USER: &str = "iam-tests-admin";

/// A function's execution role as SAM creates it.
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    /// The function's logical id in the template.
    pub function: String,
    /// The role's logical id.
    pub role: String,
    pub managed_policy_arns: Vec<String>,
    pub policies: Vec<Policy>,
}

/// An inline policy of a role.
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    pub name: String,
    pub document: Value,
}

/// The roles of template.yaml's functions, keyed by the function's name without the stack's
/// prefix (its binary's name, but for `sentry-webhook`, which runs alert-forwarder's).
pub fn template_roles() -> Result<BTreeMap<String, Role>, String> {
    template_roles_with(&[])
}

/// [`template_roles`] with `params` (the others at their defaults); with the engine task's
/// parameters, its role is there too, as `engine-task`.
pub fn template_roles_with(params: &[(&str, &str)]) -> Result<BTreeMap<String, Role>, String> {
    let template = crate::workspace_file("template.yaml").display().to_string();
    let mut args: Vec<String> = params.iter().map(|(name, value)| format!("--param={name}={value}")).collect();
    args.extend([template, ACCOUNT_ID.to_owned(), REGION.to_owned()]);
    translate(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// template.yaml as SAM deploys it: the translated CloudFormation template.
pub fn translated_template() -> Result<Value, String> {
    translate(&["--cloudformation", &crate::workspace_file("template.yaml").display().to_string()])
}

/// The resources CloudFormation would create from template.yaml with `params` (the others at
/// their defaults): conditions evaluated, intrinsic functions resolved.
pub fn resolved_template(params: &[(&str, &str)]) -> Result<Value, String> {
    let template = crate::workspace_file("template.yaml").display().to_string();
    let mut args = vec!["--resolved".to_owned()];
    for (name, value) in params {
        args.push(format!("--param={name}={value}"));
    }
    args.extend([template, ACCOUNT_ID.to_owned(), REGION.to_owned()]);
    translate(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn translate<T: serde::de::DeserializeOwned>(args: &[&str]) -> Result<T, String> {
    let script = crate::workspace_file("tests/sam_roles.py");
    let output = Command::new(crate::moto::python())
        .arg(&script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed (aws-sam-translator comes with cfn-lint: run `cargo xtask setup`): {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("{} printed no JSON: {e}", script.display()))
}

fn as_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn statements(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(all) => all.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl Role {
    /// Every action the role's inline policies allow (`service:Action`).
    pub fn actions(&self) -> BTreeSet<String> {
        self.policies.iter().flat_map(|p| allowed_actions(&p.document)).collect()
    }

    /// The actions the function's `Policies` in the template allow, without those SAM adds
    /// itself (SAM names the former `<role>Policy<n>`).
    pub fn declared_actions(&self) -> BTreeSet<String> {
        self.policies
            .iter()
            .filter(|p| p.name.starts_with(&format!("{}Policy", self.role)))
            .flat_map(|p| allowed_actions(&p.document))
            .collect()
    }

    /// The actions SAM's own policies on the role allow (for the dead-letter queue, say).
    pub fn sam_actions(&self) -> BTreeSet<String> {
        self.policies
            .iter()
            .filter(|p| !p.name.starts_with(&format!("{}Policy", self.role)))
            .flat_map(|p| allowed_actions(&p.document))
            .collect()
    }

    /// The same role with `action` taken out of every statement (statements left with no
    /// action are dropped).
    pub fn without(&self, action: &str) -> Role {
        let mut role = self.clone();
        for policy in &mut role.policies {
            let kept: Vec<Value> = statements(&policy.document)
                .into_iter()
                .filter_map(|mut statement| {
                    let actions: Vec<String> =
                        as_list(&statement["Action"]).into_iter().filter(|a| a != action).collect();
                    if actions.is_empty() {
                        return None;
                    }
                    statement["Action"] = json!(actions);
                    Some(statement)
                })
                .collect();
            policy.document["Statement"] = json!(kept);
        }
        role
    }
}

fn allowed_actions(document: &Value) -> Vec<String> {
    statements(document).iter().filter(|s| s["Effect"] == "Allow").flat_map(|s| as_list(&s["Action"])).collect()
}

/// Services for which moto matches a statement's `Resource` against the request's ARN.
const RESOURCE_CHECKED: [&str; 4] = ["s3", "sqs", "iam", "sts"];

/// `document` as moto can evaluate it: statements about other services get `Resource: *`
/// (moto asks them for `*`, which no narrower pattern matches), and each `cloudwatch:` action
/// is granted under moto's name for it too. IAM's prefix for CloudWatch is `cloudwatch`
/// (Service Authorization Reference, "Actions, resources, and condition keys for Amazon
/// CloudWatch"); moto names the action after the request's signing name, `monitoring`.
fn for_moto(document: &Value) -> Value {
    let statements: Vec<Value> = statements(document)
        .into_iter()
        .map(|mut statement| {
            let actions = as_list(&statement["Action"]);
            let checked = actions.iter().all(|a| RESOURCE_CHECKED.iter().any(|s| a.starts_with(&format!("{s}:"))));
            if !checked {
                statement["Resource"] = json!("*");
            }
            let signing_names =
                actions.iter().filter_map(|a| Some(format!("monitoring:{}", a.strip_prefix("cloudwatch:")?)));
            let actions: Vec<String> = actions.iter().cloned().chain(signing_names).collect();
            statement["Action"] = json!(actions);
            statement
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The IAM action an SDK operation needs, `service:Action`. The same name for most operations;
/// S3 groups several under one action.
pub fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service {
        "Secrets Manager" => "secretsmanager".to_owned(),
        other => other.to_lowercase().replace(' ', ""),
    };
    let action = match (prefix.as_str(), operation) {
        ("s3", "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload") => "PutObject",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "ListObjectsV2" | "ListObjects") => "ListBucket",
        ("s3", "ListMultipartUploads") => "ListBucketMultipartUploads",
        ("s3", "ListParts") => "ListMultipartUploadParts",
        (_, other) => other,
    };
    format!("{prefix}:{action}")
}

/// The IAM actions a set of SDK clients asked for, recorded as each request is built.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeSet<String>>>);

impl Calls {
    pub fn actions(&self) -> BTreeSet<String> {
        self.0.lock().map(|set| set.clone()).unwrap_or_default()
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "RecordIamActions"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        if let (Some(metadata), Ok(mut set)) = (cfg.load::<Metadata>(), self.0.lock()) {
            set.insert(iam_action(metadata.service(), metadata.name()));
        }
        Ok(())
    }
}

/// The SDK configuration of the stack's moto for `credentials`.
async fn sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// The test binary's stack with IAM enforced.
pub struct Enforced {
    endpoint: String,
    admin: SdkConfig,
    roles: BTreeMap<String, Role>,
}

static ENFORCED: OnceLock<Result<Enforced, String>> = OnceLock::new();

/// Starts the test binary's stack (if not yet), translates the template, creates the admin
/// user and then turns enforcement on, once per test binary.
pub fn enforced() -> &'static Enforced {
    let enforced = ENFORCED.get_or_init(|| {
        let endpoint = crate::shared().moto.endpoint();
        let roles = template_roles()?;
        block_on_own_runtime(Enforced::start(endpoint, roles))?
    });
    match enforced {
        Ok(enforced) => enforced,
        Err(err) => panic!("IAM enforcement could not be set up: {err}"),
    }
}

impl Enforced {
    async fn start(endpoint: String, roles: BTreeMap<String, Role>) -> Result<Enforced, String> {
        // Still unauthenticated: the stack's own test credentials work until enforcement starts.
        let open = sdk_config(&endpoint, Credentials::new("testing", "testing", None, None, "stack")).await;
        let iam = aws_sdk_iam::Client::new(&open);
        iam.create_user().user_name(ADMIN_USER).send().await.map_err(|e| format!("create the admin user: {e:?}"))?;
        iam.put_user_policy()
            .user_name(ADMIN_USER)
            .policy_name("everything")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("admin policy: {e:?}"))?;
        let key = iam
            .create_access_key()
            .user_name(ADMIN_USER)
            .send()
            .await
            .map_err(|e| format!("admin access key: {e:?}"))?
            .access_key
            .ok_or("moto returned no access key")?;
        let admin =
            sdk_config(&endpoint, Credentials::new(key.access_key_id, key.secret_access_key, None, None, "admin"))
                .await;
        let answer = reqwest::Client::new()
            .post(format!("{endpoint}/moto-api/reset-auth"))
            .body("0")
            .send()
            .await
            .map_err(|e| format!("enable IAM enforcement: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("moto refused to enforce IAM: HTTP {}", answer.status()));
        }
        Ok(Enforced { endpoint, admin, roles })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The role SAM creates for `function` (its name without the stack's prefix).
    pub fn role(&self, function: &str) -> &Role {
        self.roles.get(function).unwrap_or_else(|| panic!("template.yaml has no function {function}"))
    }

    pub fn roles(&self) -> &BTreeMap<String, Role> {
        &self.roles
    }

    /// Clients acting as the admin user, for fixtures and for looking at what a function did.
    pub fn admin(&self) -> Aws {
        Aws::from_sdk(self.admin.clone())
    }

    /// Creates `role` in moto under a fresh name (its policies as moto can evaluate them, see
    /// the module's comment), assumes it and returns an SDK configuration with its credentials.
    pub async fn assume(&self, role: &Role) -> Result<SdkConfig, String> {
        let iam = aws_sdk_iam::Client::new(&self.admin);
        let name = unique(&role.role);
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:user/{ADMIN_USER}")}}]});
        let arn = iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| format!("create role {name}: {e:?}"))?
            .role
            .map(|r| r.arn)
            .ok_or("moto returned no role")?;
        for policy in &role.policies {
            iam.put_role_policy()
                .role_name(&name)
                .policy_name(&policy.name)
                .policy_document(for_moto(&policy.document).to_string())
                .send()
                .await
                .map_err(|e| format!("policy {} on {name}: {e:?}", policy.name))?;
        }
        for managed in &role.managed_policy_arns {
            iam.attach_role_policy()
                .role_name(&name)
                .policy_arn(managed)
                .send()
                .await
                .map_err(|e| format!("attach {managed} to {name}: {e:?}"))?;
        }
        let assumed = aws_sdk_sts::Client::new(&self.admin)
            .assume_role()
            .role_arn(&arn)
            .role_session_name(&role.function)
            .send()
            .await
            .map_err(|e| format!("assume {name}: {e:?}"))?
            .credentials
            .ok_or("moto returned no credentials")?;
        let credentials = Credentials::new(
            assumed.access_key_id,
            assumed.secret_access_key,
            Some(assumed.session_token),
            None,
            "assumed-role",
        );
        Ok(sdk_config(&self.endpoint, credentials).await)
    }

    /// What a function's `main` builds at a cold start, with `role`'s credentials and the
    /// stack's environment plus `env`; the returned [`Calls`] record every action its clients use.
    pub async fn startup(&self, role: &Role, env: &[(&str, &str)]) -> Result<(Startup, Calls), String> {
        let sdk = self.assume(role).await?;
        let mut pairs = crate::shared().env();
        pairs.retain(|(k, _)| !env.iter().any(|(name, _)| name == k));
        pairs.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let env = Env::from_pairs(pairs);
        let calls = Calls::default();
        let clients = AwsClients::from_clients(
            &sdk,
            aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
            aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(&sdk).interceptor(calls.clone()).build()),
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).interceptor(calls.clone()).build(),
            ),
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
            ),
        )
        .with_lambda(aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&sdk).interceptor(calls.clone()).build(),
        ));
        let common = CommonConfig::from_env(&env).map_err(|e| e.to_string())?;
        let scrubber = Scrubber::default();
        let fallback = EnvFallback::from_env(&env).map_err(|e| e.to_string())?;
        let secrets = Arc::new(SecretCache::new(clients.secrets(), scrubber.clone()).with_fallback(fallback));
        let alerts = SnsAlertPublisher::new(clients.sns(), common.alert_topic_arn.clone());
        Ok((Startup { env, common, sdk, clients, secrets, alerts, scrubber }, calls))
    }
}
