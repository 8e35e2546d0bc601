//! The engine task as the template declares it, resolved as CloudFormation would create it:
//! only with an image and subnets; arm64 on Fargate; the engines' settings; and the grants
//! to start it. moto does not check `iam:PassRole`, so that grant is proven here, on the
//! translated template. And the image `cargo xtask image` builds, unpacked as a container
//! runtime unpacks it and its entrypoint run (arm64, under qemu) with the task definition's
//! environment against the local stack.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::template::{of_type, resolved, role_statements};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cineview-engine:1";

fn with_task() -> Value {
    resolved(&[("TaskImageUri", IMAGE), ("TaskSubnets", "subnet-a,subnet-b")])
}

fn granting(template: &Value, action: &str) -> Vec<(String, Value)> {
    role_statements(template)
        .into_iter()
        .filter(|(_, s)| s["Action"] == action || s["Action"].as_array().is_some_and(|a| a.contains(&json!(action))))
        .collect()
}

#[test]
fn only_the_backup_and_restore_test_may_start_the_task_and_pass_its_roles_to_ecs_tasks() {
    let t = with_task();
    let arn = |kind: &str, name: &str| format!("arn:aws:{kind}:us-east-1:123456789012:{name}");
    let cluster = arn("ecs", "cluster/cineview-engine");
    let definition = arn("ecs", "task-definition/cineview-engine:*");
    let roles =
        ["arn:aws:iam::123456789012:role/EngineTaskRole", "arn:aws:iam::123456789012:role/EngineTaskExecutionRole"];
    let run_task = granting(&t, "ecs:RunTask");
    let pass_role = granting(&t, "iam:PassRole");
    let holders = |grants: &[(String, Value)]| grants.iter().map(|(role, _)| role.clone()).collect::<Vec<_>>();
    let functions = ["RestoreVerifierFunctionRole", "ScheduledBackupFunctionRole"];
    assert_eq!(holders(&run_task), functions);
    assert_eq!(holders(&pass_role), functions);
    for (role, statement) in &run_task {
        assert_eq!(statement["Resource"], definition.as_str(), "{role}");
        assert_eq!(statement["Condition"], json!({"ArnEquals": {"ecs:cluster": cluster}}), "{role}");
    }
    for (role, statement) in &pass_role {
        assert_eq!(statement["Resource"], json!(roles), "{role}: the task's two roles, nothing else");
        assert_eq!(
            statement["Condition"],
            json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
            "{role}: to ECS tasks only"
        );
    }
    let verifier = &t["Resources"]["RestoreVerifierFunction"]["Properties"];
    assert_eq!(
        verifier["Environment"]["Variables"]["SCRATCH_MIB"].as_str(),
        Some(verifier["EphemeralStorage"]["Size"].to_string().as_str()),
        "the disk the restore test's estimate counts is the function's /tmp"
    );
    let definition = &t["Resources"]["EngineTaskDefinition"]["Properties"];
    assert_eq!(definition["TaskRoleArn"], roles[0]);
    assert_eq!(definition["ExecutionRoleArn"], roles[1]);
    for function in ["ScheduledBackupFunction", "RestoreVerifierFunction"] {
        let env = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["TASK_CLUSTER_ARN"], cluster.as_str(), "{function}");
        assert_eq!(env["TASK_DEFINITION_ARN"], arn("ecs", "task-definition/cineview-engine:*").as_str());
        assert_eq!(env["TASK_SUBNETS"], "subnet-a,subnet-b");
        assert!(env.get("TASK_SECURITY_GROUPS").is_none(), "none given: the VPC's default");
    }

    let without = resolved(&[]);
    assert!(
        of_type(&without, "AWS::ECS::TaskDefinition").is_empty() && of_type(&without, "AWS::ECS::Cluster").is_empty()
    );
    assert!(granting(&without, "ecs:RunTask").is_empty() && granting(&without, "iam:PassRole").is_empty());
    let env = &without["Resources"]["ScheduledBackupFunction"]["Properties"]["Environment"]["Variables"];
    assert!(env.get("TASK_DEFINITION_ARN").is_none(), "{env}");
}

#[test]
fn the_task_runs_the_image_on_arm64_fargate_with_the_functions_settings_and_its_logs_kept() {
    let t = with_task();
    let definition = &t["Resources"]["EngineTaskDefinition"]["Properties"];
    assert_eq!(definition["RequiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(definition["RuntimePlatform"]["CpuArchitecture"], "ARM64");
    assert_eq!(definition["NetworkMode"], "awsvpc");
    let container = &definition["ContainerDefinitions"][0];
    assert_eq!((&container["Name"], &container["Image"]), (&json!("engine"), &json!(IMAGE)));
    let log = &container["LogConfiguration"]["Options"];
    assert_eq!(log["awslogs-group"], "/ecs/cineview-engine-task");
    let group = &t["Resources"]["EngineTaskLogGroup"]["Properties"];
    assert_eq!((&group["LogGroupName"], &group["RetentionInDays"]), (&json!("/ecs/cineview-engine-task"), &json!(90)));
    // The read-only root: only /tmp (the restore test's download) is writable.
    assert_eq!(container["ReadonlyRootFilesystem"], true);
    assert_eq!(container["MountPoints"][0]["ContainerPath"], "/tmp");

    // The engines read the same variables in the task as in their functions, with the same values.
    let task_env: BTreeMap<String, Value> = container["Environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|pair| (pair["Name"].as_str().expect("name").to_owned(), pair["Value"].clone()))
        .collect();
    for function in ["ScheduledBackupFunction", "RestoreVerifierFunction"] {
        let env = t["Resources"][function]["Properties"]["Environment"]["Variables"].as_object().expect("env");
        for (name, value) in env {
            if name.starts_with("TASK_") || name == "BACKUP_RUNTIME" || name == "SCRATCH_MIB" {
                continue;
            }
            assert_eq!(task_env.get(name), Some(value), "{function}'s {name} in the task");
        }
    }
}

/// Whether `event` matches an EventBridge pattern made of exact values only ("Event patterns":
/// a field matches when its value, or one of its array's values, is among those listed). Any
/// other form fails the test, so it cannot pass by a form it does not read.
fn matches_exactly(pattern: &Value, event: &Value) -> bool {
    pattern.as_object().expect("a pattern is an object").iter().all(|(field, wanted)| match wanted {
        Value::Array(values) => {
            assert!(values.iter().all(|v| v.is_string()), "{field}: exact strings only: {wanted}");
            match &event[field] {
                Value::Array(items) => items.iter().any(|item| values.contains(item)),
                value => values.contains(value),
            }
        }
        Value::Object(_) => matches_exactly(wanted, &event[field]),
        other => panic!("{field}: not a pattern form: {other}"),
    })
}

/// A task that stops before its engine ends the work tells no one itself: its stopped event
/// goes to the alert topic (the forwarder's side is in `alerts::`), which EventBridge may
/// publish to and encrypt for, and what cannot be delivered goes to the dead-letter queue.
#[test]
fn the_tasks_stopped_events_go_to_the_alert_topic_which_eventbridge_may_publish_to() {
    let t = with_task();
    let rule = &t["Resources"]["EngineTaskStoppedRule"]["Properties"];
    let rule_arn = format!("arn:aws:events:us-east-1:123456789012:rule/{}", rule["Name"].as_str().expect("Name"));
    let pattern = &rule["EventPattern"];
    let stopped = crate::template::task_stopped();
    assert!(matches_exactly(pattern, &stopped), "the sample's task is in the stack's cluster: {pattern}");
    let mut running = stopped.clone();
    running["detail"]["lastStatus"] = json!("RUNNING");
    let mut elsewhere = stopped.clone();
    elsewhere["detail"]["clusterArn"] = json!("arn:aws:ecs:us-east-1:123456789012:cluster/the-app");
    assert!(!matches_exactly(pattern, &running) && !matches_exactly(pattern, &elsewhere), "{pattern}");

    let topic = "arn:aws:sns:us-east-1:123456789012:cineview-ops-alerts";
    let target = &rule["Targets"][0];
    assert_eq!((&target["Arn"], rule["Targets"].as_array().map(Vec::len)), (&json!(topic), Some(1)));
    assert_eq!(target["DeadLetterConfig"]["Arn"], "arn:aws:sqs:us-east-1:123456789012:cineview-alert-forwarder-dlq");
    let statements = |resource: &str, document: &str| -> Vec<Value> {
        t["Resources"][resource]["Properties"][document]["Statement"].as_array().expect("statements").clone()
    };
    let from_eventbridge =
        |statements: Vec<Value>| statements.into_iter().find(|s| s["Principal"]["Service"] == "events.amazonaws.com");
    let publish =
        from_eventbridge(statements("AlertTopicPolicy", "PolicyDocument")).expect("the topic lets it publish");
    assert_eq!((&publish["Action"], &publish["Resource"]), (&json!("sns:Publish"), &json!(topic)));
    assert_eq!(publish["Condition"], json!({"ArnEquals": {"aws:SourceArn": rule_arn}}), "this rule only");
    let undelivered = from_eventbridge(statements("AlertDeadLetterQueuePolicy", "PolicyDocument")).expect("the DLQ");
    assert_eq!(undelivered["Action"], "sqs:SendMessage");
    assert_eq!(undelivered["Condition"], json!({"ArnEquals": {"aws:SourceArn": rule_arn}}));
    // The topic is encrypted with the stack's key: EventBridge must be let use it, for this topic.
    let key = from_eventbridge(statements("TopicKey", "KeyPolicy")).expect("the key lets it encrypt");
    assert_eq!(key["Action"], json!(["kms:Decrypt", "kms:GenerateDataKey*"]));
    assert_eq!(key["Condition"], json!({"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic}}));

    let without = resolved(&[]);
    assert!(without["Resources"].get("EngineTaskStoppedRule").is_none());
    let no_task = |resource: &str, document: &str| {
        without["Resources"][resource]["Properties"][document]["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .all(|s| s["Principal"]["Service"] != "events.amazonaws.com")
    };
    assert!(no_task("AlertTopicPolicy", "PolicyDocument") && no_task("TopicKey", "KeyPolicy"), "without the task");
}

/// Reads a blob of the layout, checked against its digest.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    use sha2::Digest;
    let hex = digest.strip_prefix("sha256:").unwrap_or_else(|| panic!("{digest} is not a sha256 digest"));
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), hex, "blob {digest} is what its digest says");
    bytes
}

/// `command`'s output with `input` on its standard input; it must succeed.
fn piped(command: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeding = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().expect("output");
    feeding.join().expect("feeder").expect("write");
    assert!(out.status.success(), "{command:?} failed");
    out.stdout
}

/// The image's layers unpacked in order into `root` (each checked against the config's
/// `diff_ids`); returns the image's configuration.
fn unpack(layout: &Path, root: &Path) -> Value {
    use sha2::Digest;
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("index");
    let manifest = &index["manifests"][0];
    assert_eq!(manifest["platform"], json!({"architecture": "arm64", "os": "linux"}));
    let manifest: Value =
        serde_json::from_slice(&blob(layout, manifest["digest"].as_str().expect("digest"))).expect("manifest");
    let config: Value =
        serde_json::from_slice(&blob(layout, manifest["config"]["digest"].as_str().expect("config"))).expect("config");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), config["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len));
    for (layer, diff_id) in layers.iter().zip(config["rootfs"]["diff_ids"].as_array().expect("diff_ids")) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
        let gz = blob(layout, layer["digest"].as_str().expect("digest"));
        let tar = piped(Command::new("gzip").arg("-dc"), &gz);
        assert_eq!(format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar))), diff_id.as_str().expect("diff_id"));
        piped(Command::new("tar").arg("-x").arg("-C").arg(root), &tar);
    }
    config
}

/// What a container runtime gives every container: `/dev/null` and `/etc/hosts`.
fn as_a_runtime_would(root: &Path) {
    std::fs::create_dir_all(root.join("dev")).expect("dev");
    let null = root.join("dev/null");
    assert!(Command::new("mknod").arg(&null).args(["c", "1", "3"]).status().expect("mknod").success());
    assert!(Command::new("chmod").arg("666").arg(&null).status().expect("chmod").success());
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").expect("hosts");
}

/// The task definition's environment, with what names this stack's resources (its bucket,
/// secrets, topic, endpoint and credentials) in place of the account's; the image's own
/// settings stay (`PG_TOOLS_DIR` is the image's `/opt/pgtools`).
fn task_environment(config: &Value, database_secret: &str) -> Vec<(String, String)> {
    let t = with_task();
    let container = &t["Resources"]["EngineTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    let local: BTreeMap<String, String> = ops_testkit::shared().env().into_iter().collect();
    let mut env: BTreeMap<String, String> = config["config"]["Env"]
        .as_array()
        .expect("image Env")
        .iter()
        .filter_map(|pair| pair.as_str()?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    for pair in container["Environment"].as_array().expect("task Environment") {
        let name = pair["Name"].as_str().expect("name").to_owned();
        let value = match local.get(&name) {
            Some(here) if name != "PG_TOOLS_DIR" => here.clone(),
            _ => pair["Value"].as_str().expect("value").to_owned(),
        };
        env.insert(name, value);
    }
    // What the task's role and ECS give the container in AWS.
    for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"] {
        env.insert(name.to_owned(), local[name].clone());
    }
    env.insert("DATABASE_SECRET_ARN".to_owned(), database_secret.to_owned());
    env.into_iter().collect()
}

/// Runs the image's entrypoint with `args` in `root`: an arm64 binary, under qemu user-mode
/// emulation (binfmt_misc, registered by `cargo xtask image`), with nothing of this machine's
/// but its kernel.
fn run_entrypoint(root: &Path, config: &Value, env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let entrypoint = config["config"]["Entrypoint"][0].as_str().expect("entrypoint");
    // By its path: the cleared environment has no PATH to find it by.
    let out = Command::new("/usr/sbin/chroot")
        .arg(root)
        .arg(entrypoint)
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .output()
        .expect("chroot");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn the_image_takes_a_backup_and_tests_it_against_the_local_stack_with_the_tasks_environment() {
    let layout = ops_testkit::pg::engine_image().unwrap_or_else(|e| panic!("{e}"));
    let root = tempfile::tempdir().expect("root");
    let config = unpack(&layout, root.path());
    as_a_runtime_would(root.path());
    let aws = ops_testkit::aws::Aws::new(ops_testkit::shared()).await;
    let alerts = aws.subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let database = ops_testkit::aws::unique("image_db").replace('-', "_");
    let creds = ops_testkit::shared().pg.create_seeded_database(&database, ops_testkit::pg::Seed::SMALL).expect("db");
    let secret = ops_testkit::aws::unique("image-db-secret");
    let value = serde_json::to_string(&creds).expect("json");
    aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("secret");
    let env = task_environment(&config, &secret);

    let (ok, out) = run_entrypoint(root.path(), &config, &env, &["backup", "--label", "image"]);
    assert!(ok, "the backup in the image: {out}");
    assert!(out.contains("\"BackupSucceeded\":1.0"), "the metric the backup-missing alarm counts: {out}");
    let prefix = format!("backups/{database}/");
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(ops_testkit::names::backup_bucket())
        .prefix(&prefix)
        .send()
        .await
        .expect("list");
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let dump = keys.iter().find(|k| k.ends_with(".dump")).unwrap_or_else(|| panic!("a dump under {prefix}: {keys:?}"));
    assert!(keys.contains(&ops_shared::backup::manifest_key(dump)), "{keys:?}");

    let (ok, out) = run_entrypoint(root.path(), &config, &env, &["restore-test", "--backup", dump]);
    assert!(ok, "the restore test in the image: {out}");
    assert!(out.contains("\"RestoreTestPassed\":1.0"), "{out}");
    let notes = alerts.receive(1, Duration::from_secs(5)).await;
    assert!(
        notes.iter().any(|n| n.alert().title == format!("Backup/restore successful: {database}")),
        "ops hear the test passed: {:?}",
        notes.iter().map(|n| n.alert().title).collect::<Vec<_>>()
    );

    // A secret that is not there: exit 1, and ops are told.
    let missing = task_environment(&config, "no-such-secret");
    let (ok, out) = run_entrypoint(root.path(), &config, &missing, &["backup"]);
    assert!(!ok, "{out}");
    let notes = alerts.receive(1, Duration::from_secs(5)).await;
    assert!(
        notes.iter().any(
            |n| n.alert().severity == ops_shared::Severity::Critical && n.alert().title == "Database backup failed"
        ),
        "{out}"
    );
    let (ok, out) = run_entrypoint(root.path(), &config, &env, &["restore"]);
    assert!(!ok && out.contains("unknown command"), "{out}");
}
