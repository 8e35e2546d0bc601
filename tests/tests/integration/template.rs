//! The local stack provisions what the template declares, under the same names.

use ops_testkit::names;

fn template() -> String {
    std::fs::read_to_string(ops_testkit::workspace_file("template.yaml")).expect("template.yaml")
}

/// `cineview-x` as the template writes it: `${NamePrefix}-x`.
fn templated(name: &str) -> String {
    name.replacen(names::PREFIX, "${NamePrefix}", 1).replace(names::ACCOUNT_ID, "${AWS::AccountId}")
}

#[test]
fn stack_resource_names_are_the_templates() {
    let template = template();
    let declared = [
        ("TopicName", names::ALERT_TOPIC.to_owned()),
        ("TopicName", names::OPS_TOPIC.to_owned()),
        ("TableName", names::STATE_TABLE.to_owned()),
        ("BucketName", names::backup_bucket()),
        ("Name", names::DATABASE_SECRET.to_owned()),
        ("Name", names::STAGING_DATABASE_SECRET.to_owned()),
        ("Name", names::SENTRY_WEBHOOK_SECRET.to_owned()),
        ("Name", format!("{}-supabase-service-role", names::PREFIX)),
        ("Name", format!("{}-ai-engine-api", names::PREFIX)),
        ("Name", format!("{}-gemini-api", names::PREFIX)),
        ("Name", format!("{}-ai-engine-admin-token", names::PREFIX)),
        ("Name", format!("{}-supabase-access-token", names::PREFIX)),
        ("Name", format!("{}-google-service-account", names::PREFIX)),
    ];
    for (property, name) in declared {
        let line = format!("{property}: !Sub {}", templated(&name));
        assert!(template.contains(&line), "template.yaml does not declare {line:?}");
    }
    assert!(template.contains("Default: cineview"), "NamePrefix default");
}

#[test]
fn every_function_is_declared_with_its_binary() {
    let template = template();
    for binary in ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"] {
        assert!(template.contains(&format!("Binary: {binary}\n")), "{binary} is not built by the template");
        assert!(template.contains(&format!("FunctionName: !Sub ${{NamePrefix}}-{binary}\n")));
    }
}

#[test]
fn the_backup_functions_get_the_tools_layer_the_template_builds_unless_an_arn_overrides_it() {
    let template = template();
    for line in [
        "  PgToolsLayer:\n    Type: AWS::Serverless::LayerVersion\n    Condition: BuildsPgToolsLayer\n",
        "      BuildMethod: makefile\n      BuildArchitecture: arm64\n",
        "      ContentUri: layers/pg-tools/\n",
        "  BuildsPgToolsLayer: !Equals [!Ref PgToolsLayerArn, \"\"]\n",
    ] {
        assert!(template.contains(line), "template.yaml lacks {line:?}");
    }
    let layers = "      Layers: [!If [HasPgToolsLayer, !Ref PgToolsLayerArn, !Ref PgToolsLayer]]\n";
    assert_eq!(template.matches(layers).count(), 2, "scheduled-backup and restore-verifier get the layer");
    let tools_dir = format!("          PG_TOOLS_DIR: {}\n", ops_shared::pgtools::DEFAULT_DIR);
    assert_eq!(template.matches(&tools_dir).count(), 2, "both read the tools where the layer mounts them");
    let makefile = std::fs::read_to_string(ops_testkit::workspace_file("layers/pg-tools/Makefile")).expect("Makefile");
    assert!(
        makefile
            .contains("build-PgToolsLayer:\n\tcd \"$(WORKSPACE)\" && cargo xtask pg-layer --into \"$(ARTIFACTS_DIR)\"")
    );
}

/// template.yaml as SAM deploys it (translated by aws-sam-translator).
fn deployed() -> serde_json::Value {
    ops_testkit::iam::translated_template().unwrap_or_else(|e| panic!("{e}"))
}

/// The resources CloudFormation creates from template.yaml with `params`.
pub(crate) fn resolved(params: &[(&str, &str)]) -> serde_json::Value {
    ops_testkit::iam::resolved_template(params).unwrap_or_else(|e| panic!("{e}"))
}

/// Every statement of every role's inline policies, as `(role, statement)`.
pub(crate) fn role_statements(template: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    of_type(template, "AWS::IAM::Role")
        .into_iter()
        .flat_map(|(name, role)| {
            let policies = role["Properties"]["Policies"].as_array().cloned().unwrap_or_default();
            policies.into_iter().flat_map(move |policy| {
                let statements = policy["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default();
                statements.into_iter().map(move |s| (name.clone(), s))
            })
        })
        .collect()
}

pub(crate) fn of_type<'t>(template: &'t serde_json::Value, kind: &str) -> Vec<(&'t String, &'t serde_json::Value)> {
    let resources = template["Resources"].as_object().expect("Resources");
    resources.iter().filter(|(_, r)| r["Type"] == kind).collect()
}

#[test]
fn the_pager_gets_critical_alerts_and_the_alarms_that_bypass_the_forwarder() {
    use serde_json::json;
    let t = deployed();
    let pager = &t["Resources"]["PagerSubscription"];
    assert_eq!(pager["Condition"], "HasPager");
    assert_eq!(pager["Properties"]["Endpoint"], json!({"Ref": "PagerEndpoint"}));
    assert_eq!(pager["Properties"]["TopicArn"], json!({"Ref": "OpsTopic"}));
    assert_eq!(pager["Properties"]["FilterPolicy"], json!({"severity": ["critical"]}));
    // Alarms CloudWatch publishes carry no attributes, which no attribute filter matches: the
    // pager takes the topic they also go to whole.
    let alarms = &t["Resources"]["PagerAlarmSubscription"];
    assert_eq!(alarms["Condition"], "HasPager");
    assert_eq!(alarms["Properties"]["TopicArn"], json!({"Ref": "PagerTopic"}));
    assert!(alarms["Properties"]["FilterPolicy"].is_null());
    assert_eq!(t["Conditions"]["HasPager"], json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "PagerEndpoint"}, ""]}]}));
    assert_eq!(t["Parameters"]["PagerEndpoint"]["Default"], "", "no pager unless one is given");
    // SNS refuses the same endpoint subscribed twice with other attributes.
    for (name, subscription) in of_type(&t, "AWS::SNS::Subscription") {
        assert_ne!(subscription["Properties"]["Endpoint"], json!({"Ref": "OpsEmail"}), "{name}");
    }
    for (name, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        let actions = alarm["Properties"]["AlarmActions"].as_array().expect("actions");
        assert!(
            actions.contains(&json!({"Ref": "AlertTopic"})) || actions.contains(&json!({"Ref": "OpsTopic"})),
            "{name} reaches nobody"
        );
    }
}

#[test]
fn what_holds_or_protects_data_is_retained() {
    let t = deployed();
    for kind in ["AWS::KMS::Key", "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret"] {
        let resources = of_type(&t, kind);
        assert!(!resources.is_empty(), "{kind}");
        for (name, resource) in resources {
            assert_eq!(resource["DeletionPolicy"], "Retain", "{name}");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{name}");
        }
    }
}

#[test]
fn rotation_waits_for_enable_rotation_and_never_runs_late() {
    let t = deployed();
    assert_eq!(t["Parameters"]["EnableRotation"]["Default"], "false");
    let schedules = of_type(&t, "AWS::SecretsManager::RotationSchedule");
    assert_eq!(schedules.len(), 3);
    for (name, schedule) in schedules {
        assert_eq!(schedule["Condition"], "RotationEnabled", "{name}");
    }
    let created = resolved(&[]);
    assert!(of_type(&created, "AWS::SecretsManager::RotationSchedule").is_empty(), "nothing rotates by default");
    let created = resolved(&[("EnableRotation", "true")]);
    let schedules = of_type(&created, "AWS::SecretsManager::RotationSchedule");
    assert_eq!(schedules.len(), 3);
    for (name, schedule) in schedules {
        let secret = schedule["Properties"]["SecretId"].as_str().expect("secret");
        let days = if secret.contains("-supabase-service-role-") { 90 } else { 180 };
        assert_eq!(
            schedule["Properties"]["RotationRules"]["ScheduleExpression"],
            format!("rate({days} days)"),
            "{name}"
        );
    }
}

/// The secrets the runbook created by hand, by the name the stack gives them.
const RUNBOOK_SECRETS: [(&str, &str); 3] = [
    ("ExistingSupabaseServiceRoleSecretArn", "supabase-service-role"),
    ("ExistingAiEngineApiSecretArn", "ai-engine-api"),
    ("ExistingGeminiApiSecretArn", "gemini-api"),
];

fn secret_names(created: &serde_json::Value) -> Vec<String> {
    of_type(created, "AWS::SecretsManager::Secret")
        .into_iter()
        .map(|(_, secret)| secret["Properties"]["Name"].as_str().expect("name").to_owned())
        .collect()
}

/// Every secret ARN a role may use, or a schedule rotates, in the created resources.
fn secret_references(created: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![created];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::String(s) if s.starts_with("arn:aws:secretsmanager:") => found.push(s.clone()),
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(fields) => stack.extend(fields.values()),
            _ => {}
        }
    }
    found
}

#[test]
fn the_stack_creates_the_runbook_secrets_by_default() {
    let created = resolved(&[("EnableRotation", "true")]);
    let names = secret_names(&created);
    for (_, name) in RUNBOOK_SECRETS {
        assert!(names.contains(&format!("{}-{name}", names::PREFIX)), "{name} is created: {names:?}");
    }
}

#[test]
fn secrets_the_runbook_created_by_hand_are_adopted_by_arn() {
    let arns: Vec<(&str, String)> = RUNBOOK_SECRETS
        .iter()
        .map(|(parameter, name)| {
            let arn = format!(
                "arn:aws:secretsmanager:{}:{}:secret:{}-{name}-Ab12Cd",
                names::REGION,
                names::ACCOUNT_ID,
                names::PREFIX
            );
            (*parameter, arn)
        })
        .collect();
    let mut params: Vec<(&str, &str)> = arns.iter().map(|(p, arn)| (*p, arn.as_str())).collect();
    params.push(("EnableRotation", "true"));
    let created = resolved(&params);

    let names = secret_names(&created);
    let references = secret_references(&created);
    for ((_, name), (_, arn)) in RUNBOOK_SECRETS.iter().zip(&arns) {
        assert!(!names.iter().any(|n| n.ends_with(name)), "an adopted {name} is not created again: {names:?}");
        // Every use of the secret names the adopted one, none the secret the stack would create.
        assert!(references.contains(arn), "{arn} is used");
        assert!(!references.iter().any(|r| r.contains(&format!("{name}-??????"))), "{name}: {references:?}");
    }
    let schedules = of_type(&created, "AWS::SecretsManager::RotationSchedule");
    let rotated: Vec<&str> = schedules.iter().map(|(_, s)| s["Properties"]["SecretId"].as_str().expect("id")).collect();
    for (_, arn) in &arns {
        assert!(rotated.contains(&arn.as_str()), "{arn} rotates: {rotated:?}");
    }
    let rotation = &created["Resources"]["SecretRotationFunctionRole"]["Properties"]["Policies"];
    let rotation = serde_json::to_string(rotation).expect("policies");
    for (_, arn) in &arns {
        assert!(rotation.contains(arn.as_str()), "secret-rotation may rotate {arn}");
    }
    let health = serde_json::to_string(&created["Resources"]["HealthCheckerFunctionRole"]).expect("role");
    assert!(health.contains(arns[1].1.as_str()), "health-checker reads the adopted AI engine key");
}

#[test]
fn every_function_logs_to_a_group_kept_for_the_retention_parameter() {
    let t = deployed();
    let functions = of_type(&t, "AWS::Lambda::Function");
    assert_eq!(functions.len(), 6);
    for (name, function) in functions {
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].as_str().expect("log group");
        let group = &t["Resources"][group];
        assert_eq!(group["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(group["Properties"]["RetentionInDays"], serde_json::json!({"Ref": "LogRetentionDays"}), "{name}");
        let function_name = function["Properties"]["FunctionName"]["Fn::Sub"].as_str().expect("name");
        assert_eq!(group["Properties"]["LogGroupName"]["Fn::Sub"], format!("/aws/lambda/{function_name}"), "{name}");
    }
}

#[test]
fn retries_and_concurrency_are_explicit() {
    use serde_json::json;
    let t = deployed();
    let r = &t["Resources"];
    for (function, retries, reserved) in [
        ("ScheduledBackupFunction", 0, Some(1)),
        ("RestoreVerifierFunction", 0, Some(1)),
        ("HealthCheckerFunction", 0, None),
        // Public Function URL: capped.
        ("AlertForwarderFunction", 2, Some(10)),
    ] {
        let config = &r[format!("{function}EventInvokeConfig")]["Properties"];
        assert_eq!(config["MaximumRetryAttempts"], retries, "{function}");
        let concurrency = &r[function]["Properties"]["ReservedConcurrentExecutions"];
        match reserved {
            Some(n) => assert_eq!(concurrency, &json!({"Fn::If": ["ReservesConcurrency", n, {"Ref": "AWS::NoValue"}]})),
            None => assert!(concurrency.is_null(), "{function}"),
        }
    }
    assert!(r["SentryWebhookFunctionUrl"].is_object(), "the Function URL Sentry calls");
    assert!(r["AlertForwarderFunctionUrl"].is_null(), "the SNS path has no public URL");
    assert_eq!(
        r["SentryWebhookFunction"]["Properties"]["ReservedConcurrentExecutions"],
        json!({"Fn::If": ["ReservesConcurrency", 5, {"Ref": "AWS::NoValue"}]})
    );
}

#[test]
fn an_alarm_fires_when_no_backup_succeeded_for_26_hours() {
    use serde_json::json;
    let t = deployed();
    let alarm = &t["Resources"]["BackupMissingAlarm"]["Properties"];
    assert_eq!(alarm["Namespace"], "CineView/Ops");
    assert_eq!(alarm["MetricName"], "BackupSucceeded");
    assert_eq!(alarm["Dimensions"], json!([{"Name": "Function", "Value": "scheduled-backup"}]));
    let window = alarm["Period"].as_u64().expect("period") * alarm["EvaluationPeriods"].as_u64().expect("periods");
    assert_eq!(window, 26 * 3600);
    assert_eq!(alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"], "every hour of the window without a success");
    assert_eq!(alarm["TreatMissingData"], "breaching", "a schedule that stops firing sends nothing");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(alarm["AlarmActions"], json!([{"Ref": "AlertTopic"}]));
    let backup =
        std::fs::read_to_string(ops_testkit::workspace_file("shared/src/domain/backup/take.rs")).expect("take.rs");
    assert!(backup.contains(".value(\"BackupSucceeded\", 1.0"), "the backup emits the metric the alarm watches");
}

#[test]
fn what_sns_cannot_deliver_lands_in_the_dead_letter_queue() {
    use serde_json::json;
    let t = deployed();
    let dlq = json!({"deadLetterTargetArn": {"Fn::GetAtt": ["AlertDeadLetterQueue", "Arn"]}});
    for (name, subscription) in of_type(&t, "AWS::SNS::Subscription") {
        assert_eq!(subscription["Properties"]["RedrivePolicy"], dlq, "{name}");
    }
    let policy = &t["Resources"]["AlertDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(policy["Principal"], json!({"Service": "sns.amazonaws.com"}));
    assert_eq!(policy["Action"], "sqs:SendMessage");
}

/// Where the pager is in the routing test: any address other than `OpsEmail`.
const PAGER: &str = "pager@cineview.ai";

/// A subscription of the deployed template: its topic, where it delivers, and its filter.
struct Subscription {
    topic: String,
    endpoint: String,
    policy: Option<serde_json::Value>,
    scope: ops_testkit::sns_filter::Scope,
}

/// Every subscription CloudFormation creates: `AWS::SNS::Subscription` resources (SAM makes the
/// forwarder's SNS event one) and those a topic declares inline (never filtered).
fn subscriptions(resources: &serde_json::Map<String, serde_json::Value>) -> Vec<Subscription> {
    use ops_testkit::sns_filter::Scope;
    let mut found = Vec::new();
    for (name, resource) in resources {
        let properties = &resource["Properties"];
        match resource["Type"].as_str() {
            Some("AWS::SNS::Subscription") => found.push(Subscription {
                topic: properties["TopicArn"].as_str().expect("TopicArn").to_owned(),
                endpoint: properties["Endpoint"].as_str().expect("Endpoint").to_owned(),
                policy: properties.get("FilterPolicy").cloned(),
                scope: Scope::from_property(properties["FilterPolicyScope"].as_str())
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            }),
            Some("AWS::SNS::Topic") => {
                let arn = format!(
                    "arn:aws:sns:{}:{}:{}",
                    names::REGION,
                    names::ACCOUNT_ID,
                    properties["TopicName"].as_str().expect("TopicName")
                );
                for inline in properties["Subscription"].as_array().into_iter().flatten() {
                    found.push(Subscription {
                        topic: arn.clone(),
                        endpoint: inline["Endpoint"].as_str().expect("Endpoint").to_owned(),
                        policy: None,
                        scope: Scope::MessageAttributes,
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The endpoints SNS delivers `message` to when it is published to `topic`.
fn receivers(subscriptions: &[Subscription], topic: &str, message: &ops_testkit::sns_filter::Message) -> Vec<String> {
    subscriptions
        .iter()
        .filter(|s| s.topic == topic)
        .filter(|s| match &s.policy {
            None => true,
            Some(policy) => ops_testkit::sns_filter::matches(policy, s.scope, message)
                .unwrap_or_else(|e| panic!("filter policy of {} on {topic}: {e}", s.endpoint)),
        })
        .map(|s| s.endpoint.clone())
        .collect()
}

/// The message attributes `SnsAlertPublisher` (every function's alerts, the forwarder's
/// notifications) really sends for an alert of `severity` from `source`, as SNS delivers them.
async fn published_attributes(
    aws: &ops_testkit::aws::Aws,
    severity: ops_shared::Severity,
    source: &str,
) -> std::collections::BTreeMap<String, ops_testkit::sns_filter::Attribute> {
    use ops_shared::AlertSink;
    let topic = aws.create_topic(&ops_testkit::aws::unique("published")).await;
    // No filter policy on moto's side: moto matches `exists: false` on a message without
    // attributes, which AWS does not ("Key matching"). The evaluator decides instead.
    let inbox = aws.subscribe_queue(&topic).await;
    let alert = ops_shared::Alert::new(source, severity, ops_testkit::aws::unique("key"), "title");
    ops_shared::SnsAlertPublisher::new(aws.sns.clone(), topic)
        .publish_message("subject", "body", &alert)
        .await
        .expect("publish");
    let note = inbox.receive(1, std::time::Duration::from_secs(3)).await.pop().expect("delivered");
    note.attributes
        .iter()
        .map(|(name, a)| {
            (
                name.clone(),
                ops_testkit::sns_filter::Attribute { data_type: a.data_type.clone(), value: a.value.clone() },
            )
        })
        .collect()
}

/// A CloudWatch alarm notification for `alarm` entering `state`: the JSON body of "Notifying
/// users on alarm changes" (the sample event's), and no message attributes, as CloudWatch sends it.
fn alarm_notification(alarm: &str, state: &str) -> ops_testkit::sns_filter::Message {
    let path = ops_testkit::workspace_file("events/alert-forwarder/sns-cloudwatch-alarm.json");
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    let mut body: serde_json::Value =
        serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().expect("Message")).expect("alarm JSON");
    body["AlarmName"] = alarm.into();
    body["NewStateValue"] = state.into();
    ops_testkit::sns_filter::Message { body: body.to_string(), attributes: Default::default() }
}

/// The engine task's stopped event as EventBridge publishes it: the sample's message (the ECS
/// Developer Guide's task state change example, stopped as a task whose image cannot be pulled).
pub(crate) fn task_stopped() -> serde_json::Value {
    let path = ops_testkit::workspace_file("events/alert-forwarder/sns-ecs-task-stopped.json");
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().expect("Message")).expect("event JSON")
}

#[tokio::test]
async fn by_sns_rules_the_pager_gets_criticals_and_the_pipelines_own_alarms_without_the_forwarder() {
    use ops_shared::Severity;
    use ops_testkit::sns_filter::Message;
    use std::collections::{BTreeMap, BTreeSet};

    let created = resolved(&[
        ("PagerEndpoint", PAGER),
        ("TaskImageUri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/cineview-engine:1"),
        ("TaskSubnets", "subnet-a"),
    ]);
    let resources = created["Resources"].as_object().expect("Resources");
    let subscriptions = subscriptions(resources);
    let functions = of_type(&created, "AWS::Lambda::Function");
    let (_, forwarder) = functions
        .iter()
        .find(|(_, f)| f["Properties"]["FunctionName"].as_str().is_some_and(|n| n.ends_with("-alert-forwarder")))
        .expect("the forwarder");
    let forwarder_name = forwarder["Properties"]["FunctionName"].as_str().expect("name");
    let forwarder_endpoint =
        format!("arn:aws:lambda:{}:{}:function:{forwarder_name}", names::REGION, names::ACCOUNT_ID);
    let ops_topic = forwarder["Properties"]["Environment"]["Variables"]["OPS_TOPIC_ARN"].as_str().expect("ops topic");
    let ops_email = "ops@cineview.ai";
    let aws = ops_testkit::aws::Aws::new(ops_testkit::shared()).await;

    // What each endpoint receives: "<what> (direct)" or "<what> (via the forwarder)".
    let mut received: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut forwarded = Vec::new();
    let mut deliver =
        |topic: &str, message: &Message, what: &str, route: &str, forwarded: &mut Vec<(String, String)>| {
            for endpoint in receivers(&subscriptions, topic, message) {
                if endpoint == forwarder_endpoint {
                    forwarded.push((what.to_owned(), message.body.clone()));
                }
                received.entry(endpoint).or_default().insert(format!("{what} ({route})"));
            }
        };

    // CloudWatch: every alarm's ALARM notification to each of its actions.
    let alarms: Vec<String> = of_type(&created, "AWS::CloudWatch::Alarm")
        .iter()
        .map(|(_, alarm)| alarm["Properties"]["AlarmName"].as_str().expect("AlarmName").to_owned())
        .collect();
    for (_, alarm) in of_type(&created, "AWS::CloudWatch::Alarm") {
        let name = alarm["Properties"]["AlarmName"].as_str().expect("AlarmName");
        for topic in alarm["Properties"]["AlarmActions"].as_array().expect("AlarmActions") {
            let topic = topic.as_str().expect("topic ARN");
            deliver(topic, &alarm_notification(name, "ALARM"), &format!("alarm {name}"), "direct", &mut forwarded);
        }
    }
    // EventBridge: the engine task's stopped event to each target of a rule for ECS events,
    // without message attributes, as EventBridge publishes.
    let task_rules: Vec<String> = of_type(&created, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| rule["Properties"]["EventPattern"]["source"] == serde_json::json!(["aws.ecs"]))
        .map(|(name, rule)| {
            for target in rule["Properties"]["Targets"].as_array().expect("Targets") {
                let topic = target["Arn"].as_str().expect("topic ARN");
                let message = Message { body: task_stopped().to_string(), attributes: Default::default() };
                deliver(topic, &message, &format!("rule {name}"), "direct", &mut forwarded);
            }
            name.clone()
        })
        .collect();
    assert_eq!(task_rules, ["EngineTaskStoppedRule"]);
    // Every function's alerts of each severity, with the attributes the publisher sends.
    for (_, function) in &functions {
        let Some(topic) = function["Properties"]["Environment"]["Variables"]["ALERT_TOPIC_ARN"].as_str() else {
            continue;
        };
        let source = function["Properties"]["FunctionName"].as_str().expect("name");
        for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
            let attributes = published_attributes(&aws, severity, source).await;
            let alert = ops_shared::Alert::new(source, severity, format!("{source}:k"), "title");
            let message = Message { body: alert.to_body(), attributes };
            deliver(topic, &message, &format!("{severity} from {source}"), "direct", &mut forwarded);
        }
    }
    // The forwarder publishes each alert it receives to the ops topic, severity as an attribute.
    for (what, body) in std::mem::take(&mut forwarded) {
        let alert = alert_forwarder::inbound::normalise(&body, None, "alert topic").expect("an alert");
        let attributes = published_attributes(&aws, alert.severity, &alert.source).await;
        let message = Message { body: "plain-text notification".into(), attributes };
        deliver(ops_topic, &message, &what, "via the forwarder", &mut forwarded);
    }
    assert!(forwarded.is_empty(), "the forwarder does not receive its own notifications: {forwarded:?}");

    let pager = received.get(PAGER).cloned().unwrap_or_default();
    let email = received.get(ops_email).cloned().unwrap_or_default();
    for pipeline in ["alert-forwarder-errors", "alert-forwarder-dead-letters", "alert-forwarder-throttles"] {
        let alarm = format!("alarm {}-{pipeline}", names::PREFIX);
        assert!(
            pager.contains(&format!("{alarm} (direct)")),
            "the pager must get {alarm} directly; it gets {pager:#?}"
        );
        assert!(email.contains(&format!("{alarm} (direct)")), "ops must get {alarm}; they get {email:#?}");
        assert!(!pager.contains(&format!("{alarm} (via the forwarder)")), "{alarm} cannot rely on the forwarder");
    }
    for alarm in &alarms {
        let paged = [format!("alarm {alarm} (direct)"), format!("alarm {alarm} (via the forwarder)")];
        assert!(paged.iter().any(|p| pager.contains(p)), "{alarm} in ALARM pages: {pager:#?}");
        assert!(paged.iter().any(|p| email.contains(p)), "{alarm} reaches ops: {email:#?}");
    }
    for rule in &task_rules {
        let what = format!("rule {rule} (via the forwarder)");
        assert!(pager.contains(&what) && email.contains(&what), "{what} pages: {pager:#?}");
    }
    for (_, function) in &functions {
        if function["Properties"]["Environment"]["Variables"]["ALERT_TOPIC_ARN"].is_null() {
            continue;
        }
        let source = function["Properties"]["FunctionName"].as_str().expect("name");
        for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
            let what = format!("{severity} from {source} (via the forwarder)");
            assert!(email.contains(&what), "ops get {what}");
            assert_eq!(pager.contains(&what), severity == Severity::Critical, "the pager and {what}");
        }
    }
    assert!(
        received.keys().all(|e| [PAGER, ops_email, forwarder_endpoint.as_str()].contains(&e.as_str())),
        "{received:#?}"
    );
}

#[test]
fn an_alarm_fires_when_the_forwarder_is_throttled() {
    use serde_json::json;
    let t = deployed();
    let alarm = &t["Resources"]["AlertForwarderThrottlesAlarm"]["Properties"];
    assert_eq!(alarm["Namespace"], "AWS/Lambda");
    assert_eq!(alarm["MetricName"], "Throttles");
    assert_eq!(alarm["Dimensions"], json!([{"Name": "FunctionName", "Value": {"Ref": "AlertForwarderFunction"}}]));
    assert_eq!(alarm["Statistic"], "Sum");
    assert_eq!(alarm["Threshold"], 1);
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

/// The function name an ARN (or a bare name) of a Lambda function names.
fn function_name(arn_or_name: &str) -> String {
    arn_or_name.rsplit_once(":function:").map_or(arn_or_name, |(_, name)| name).to_owned()
}

/// Sentry's requests on the public Function URL and SNS's deliveries of alerts run in functions
/// of their own, each with reserved concurrency, so a flood on the URL cannot use up what the
/// alerts need. Lambda's concurrency cannot be emulated here: the template decides it.
#[test]
fn sentry_webhooks_and_sns_deliveries_do_not_share_a_concurrency_pool() {
    use std::collections::BTreeSet;
    let created = resolved(&[]);
    let url_functions: BTreeSet<String> = of_type(&created, "AWS::Lambda::Url")
        .iter()
        .map(|(_, url)| function_name(url["Properties"]["TargetFunctionArn"].as_str().expect("target")))
        .collect();
    let sns_functions: BTreeSet<String> = of_type(&created, "AWS::SNS::Subscription")
        .iter()
        .filter(|(_, s)| s["Properties"]["Protocol"] == "lambda")
        .map(|(_, s)| function_name(s["Properties"]["Endpoint"].as_str().expect("endpoint")))
        .collect();
    assert_eq!(url_functions, BTreeSet::from([format!("{}-sentry-webhook", names::PREFIX)]));
    assert_eq!(sns_functions, BTreeSet::from([format!("{}-alert-forwarder", names::PREFIX)]));
    for (name, function) in of_type(&created, "AWS::Lambda::Function") {
        let function_name = function["Properties"]["FunctionName"].as_str().expect("name").to_owned();
        if url_functions.contains(&function_name) || sns_functions.contains(&function_name) {
            let reserved = function["Properties"]["ReservedConcurrentExecutions"].as_u64();
            assert!(reserved.is_some_and(|n| n > 0), "{name} reserves its own concurrency");
        }
    }
    let unreserved = resolved(&[("ReserveConcurrency", "false")]);
    assert!(
        of_type(&unreserved, "AWS::Lambda::Function")
            .iter()
            .all(|(_, f)| f["Properties"]["ReservedConcurrentExecutions"].is_null()),
        "ReserveConcurrency=false reserves nothing"
    );
}

/// The health check, which runs every minute, reads only the connect-only database login, never
/// the credentials that own the data.
#[test]
fn the_health_check_reads_a_connect_only_login_not_the_databases_owner() {
    let roles = ops_testkit::iam::template_roles().unwrap_or_else(|e| panic!("{e}"));
    let health = &roles["health-checker"];
    let readable: Vec<String> = health
        .policies
        .iter()
        .flat_map(|p| match &p.document["Statement"] {
            serde_json::Value::Array(all) => all.clone(),
            one => vec![one.clone()],
        })
        .filter(|s| s["Action"].to_string().contains("secretsmanager:GetSecretValue"))
        .map(|s| s["Resource"].to_string())
        .collect();
    let text = readable.join(" ");
    assert!(text.contains("cineview-health-database"), "{text}");
    assert!(!text.contains("secret:cineview-database-"), "the health check may read the owner's credentials: {text}");
}

/// The statements of secret-rotation's role as CloudFormation creates it with `params`.
fn rotation_statements(params: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let created = resolved(params);
    let policies = created["Resources"]["SecretRotationFunctionRole"]["Properties"]["Policies"].clone();
    let policies = policies.as_array().cloned().unwrap_or_default();
    policies.iter().flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default()).collect()
}

#[test]
fn production_rotation_reads_only_its_staging_twins_records_and_its_own_code_hash() {
    let function =
        format!("arn:aws:lambda:{}:{}:function:{}-secret-rotation", names::REGION, names::ACCOUNT_ID, names::PREFIX);
    let staging_table =
        format!("arn:aws:dynamodb:{}:{}:table/cineview-staging-ops-state", names::REGION, names::ACCOUNT_ID);
    let off = rotation_statements(&[]);
    assert!(!serde_json::to_string(&off).expect("json").contains("staging-ops-state"), "no gate, no staging grant");
    let on = rotation_statements(&[("StagingNamePrefix", "cineview-staging")]);
    let by_sid = |sid: &str| on.iter().find(|s| s["Sid"] == sid).cloned().unwrap_or_else(|| panic!("no {sid}"));
    let staging = by_sid("ReadStagingRotationRuns");
    assert_eq!(staging["Action"], "dynamodb:GetItem");
    assert_eq!(staging["Resource"], staging_table.as_str());
    let own_code = by_sid("ReadOwnCodeHash");
    assert_eq!(own_code["Action"], "lambda:GetFunctionConfiguration");
    assert_eq!(own_code["Resource"], function.as_str());
    let lambda: Vec<_> = on.iter().filter(|s| s.to_string().contains("lambda:")).collect();
    assert_eq!(lambda.len(), 1, "no other Lambda grant: {lambda:?}");
    let created = resolved(&[("StagingNamePrefix", "cineview-staging")]);
    let env = &created["Resources"]["SecretRotationFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env["STAGING_NAME_PREFIX"], "cineview-staging");
}

/// The team's Slack is optional: with `SlackWebhookSecretArn` both forwarder functions name the
/// secret and may read it (a partial ARN too, hence the `*`); without, neither names nor reads
/// any Slack secret.
#[test]
fn the_forwarders_read_the_slack_webhook_only_when_one_is_given() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cineview-slack-AbCdEf";
    let slack_statements = |template: &serde_json::Value| -> Vec<String> {
        role_statements(template)
            .into_iter()
            .filter(|(_, s)| s["Sid"] == "ReadSlackWebhook")
            .map(|(name, s)| format!("{name}: {} {}", s["Action"], s["Resource"]))
            .collect()
    };
    let with = resolved(&[("SlackWebhookSecretArn", arn)]);
    let mut granted = slack_statements(&with);
    granted.sort();
    assert_eq!(
        granted,
        [
            format!("AlertForwarderFunctionRole: \"secretsmanager:GetSecretValue\" \"{arn}*\""),
            format!("SentryWebhookFunctionRole: \"secretsmanager:GetSecretValue\" \"{arn}*\""),
        ]
    );
    for function in ["AlertForwarderFunction", "SentryWebhookFunction"] {
        let env = &with["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["SLACK_WEBHOOK_SECRET_ARN"], arn, "{function}");
    }
    let without = resolved(&[]);
    assert!(slack_statements(&without).is_empty());
    for function in ["AlertForwarderFunction", "SentryWebhookFunction"] {
        let env = &without["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert!(env.get("SLACK_WEBHOOK_SECRET_ARN").is_none(), "{function}: {env}");
    }
}
