//! The handoff to the engine task: scheduled-backup and restore-verifier judge from the last
//! run whether they would finish in Lambda, and start the engine task on Fargate (`RunTask`
//! in the local AWS stand-in) when not, or always with `BACKUP_RUNTIME=fargate`.

use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::backup::{Manifest, manifest_key};
use ops_shared::ecs::EcsTasks;
use ops_shared::handoff::{Handoff, HandoffConfig, RuntimeChoice, TaskConfig};
use ops_shared::lambda::Function;
use ops_shared::objects::ObjectStore;
use ops_shared::{Scrubber, Severity};
use ops_testkit::aws::unique;
use ops_testkit::ecs::EngineTask;
use serde_json::{Value, json};

use crate::backups::{Fixture, fixture, small_backup};

/// An invocation with Lambda's 15 minutes ahead of it.
fn fifteen_minutes() -> Context {
    let mut ctx = Context::default();
    ctx.request_id = unique("request");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    ctx.deadline = (now + Duration::from_secs(900)).as_millis() as u64;
    ctx
}

fn handoff(f: &Fixture, choice: RuntimeChoice, task: &TaskConfig) -> Handoff<EcsTasks> {
    let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
    let launcher = EcsTasks::new(&f.aws.sdk, http, task.clone());
    Handoff {
        config: HandoffConfig { choice, task: Some(task.clone()), scratch_bytes: None },
        launcher: Some(launcher),
    }
}

/// Rewrites `manifest` as if its backup had taken `hours`: the rate the next estimate uses.
async fn took(f: &Fixture, manifest: &Manifest, hours: i64) {
    let mut slow = manifest.clone();
    slow.started_at = manifest.finished_at - chrono::Duration::hours(hours);
    let body = serde_json::to_vec(&slow).expect("json");
    f.store().put(&manifest_key(&manifest.key), body, "application/json").await.expect("manifest");
}

async fn manifests(f: &Fixture) -> usize {
    f.objects().await.iter().filter(|o| o.key.ends_with(".manifest.json")).count()
}

#[tokio::test]
async fn a_backup_lambda_would_not_finish_is_handed_to_the_engine_task_and_a_quick_one_is_not() {
    let f = fixture().await;
    let engine = EngineTask::create(&f.aws.sdk, &unique("engine")).await.expect("cluster and task definition");
    let (secret, _) = f.database(ops_testkit::pg::Seed::SMALL).await;
    let (first, _) = f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect("first backup");
    assert!(first.database_bytes.is_some_and(|b| b > 1_000_000), "the manifest records the database's size");

    // The last backup went at its real rate: the next fits in Lambda and runs here.
    let function = |choice| scheduled_backup::BackupFunction {
        engine: f.backup(f.store(), f.backup_config(&secret)),
        handoff: handoff(&f, choice, &engine.config),
    };
    let answer = Function::new("scheduled-backup", function(RuntimeChoice::Auto), Scrubber::default())
        .invoke(LambdaEvent::new(json!({}), fifteen_minutes()))
        .await
        .expect("backup here");
    let answer = serde_json::to_value(answer).expect("json");
    assert!(answer["key"].as_str().is_some(), "a backup taken here: {answer}");
    assert_eq!(manifests(&f).await, 2);
    assert!(engine.tasks().await.expect("tasks").is_empty(), "no task for a quick backup");

    // The last backup took 10 hours: this one would not finish in 14 minutes.
    let (latest, _) = f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect("backup");
    took(&f, &latest, 10).await;
    // Keys name backups to the second: one taken here in the same second may sort after it.
    for object in f.objects().await {
        if object.key.ends_with(".manifest.json") && !object.key.contains(&latest.backup_id) {
            let delete = f.aws.s3.delete_object().bucket(ops_testkit::names::backup_bucket()).key(&object.key);
            delete.send().await.expect("delete");
        }
    }
    let answer = Function::new("scheduled-backup", function(RuntimeChoice::Auto), Scrubber::default())
        .invoke(LambdaEvent::new(json!({"label": "pre-deploy"}), fifteen_minutes()))
        .await
        .expect("handed off");
    let answer = serde_json::to_value(answer).expect("json");
    assert_eq!(answer["handed_off_to"], "fargate", "{answer}");
    assert_eq!(answer["estimate"]["source"]["last_run"], latest.key.as_str(), "{answer}");
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("more than the")), "{answer}");
    assert_eq!(manifests(&f).await, 1, "the function itself took no backup");
    let tasks = engine.tasks().await.expect("tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["taskArn"], answer["task_arn"]);
    assert_eq!(tasks[0]["taskDefinitionArn"], engine.config.task_definition.as_str());
    assert_eq!(tasks[0]["launchType"], "FARGATE");
    let overrides = &tasks[0]["overrides"]["containerOverrides"][0];
    assert_eq!(
        (&overrides["name"], &overrides["command"]),
        (&json!("engine"), &json!(["backup", "--label", "pre-deploy"]))
    );
    assert!(f.alerts.receive(1, Duration::from_secs(1)).await.is_empty(), "a handoff is not an alert");
}

#[tokio::test]
async fn a_handoff_that_fails_alerts_at_once_and_takes_no_backup() {
    let f = fixture().await;
    let engine = EngineTask::create(&f.aws.sdk, &unique("engine")).await.expect("cluster and task definition");
    let (secret, _) = f.database(ops_testkit::pg::Seed::SMALL).await;
    let missing = TaskConfig {
        task_definition: format!("{}-gone:7", engine.config.task_definition.rsplit_once(':').expect("revision").0),
        ..engine.config.clone()
    };
    let function = scheduled_backup::BackupFunction {
        engine: f.backup(f.store(), f.backup_config(&secret)),
        handoff: handoff(&f, RuntimeChoice::Fargate, &missing),
    };
    let err = Function::new("scheduled-backup", function, Scrubber::default())
        .invoke(LambdaEvent::new(json!({}), fifteen_minutes()))
        .await
        .expect_err("no task started");
    assert_eq!(err.error_type, "HandoffFailed", "{err:?}");
    assert!(err.error_message.contains("the engine task did not start"), "{}", err.error_message);
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    let alert = notes[0].alert();
    assert_eq!(alert.severity, Severity::Critical);
    assert!(alert.title.contains("could not start on Fargate"), "{}", alert.title);
    assert!(
        alert.summary.contains("BACKUP_RUNTIME is fargate") && alert.summary.contains("Nothing ran"),
        "{}",
        alert.summary
    );
    assert_eq!(manifests(&f).await, 0);
    assert!(engine.tasks().await.expect("tasks").is_empty());
}

#[tokio::test]
async fn a_restore_test_is_handed_off_for_the_backup_it_chose() {
    let f = fixture().await;
    let engine = EngineTask::create(&f.aws.sdk, &unique("engine")).await.expect("cluster and task definition");
    let manifest = small_backup(&f).await;
    let function = restore_verifier::VerifierFunction {
        engine: f.verifier(),
        handoff: handoff(&f, RuntimeChoice::Fargate, &engine.config),
    };
    let answer = Function::new("restore-verifier", function, Scrubber::default())
        .invoke(LambdaEvent::new(json!({"backup": "random"}), fifteen_minutes()))
        .await
        .expect("handed off");
    let answer: Value = serde_json::to_value(answer).expect("json");
    assert_eq!(answer["command"], json!(["restore-test", "--backup", manifest.key]), "{answer}");
    let tasks = engine.tasks().await.expect("tasks");
    assert_eq!(tasks[0]["overrides"]["containerOverrides"][0]["command"], answer["command"]);
    let reports = f.store().list(&format!("{}reports/", f.prefix)).await.expect("list");
    assert!(reports.is_empty(), "the function itself tested nothing: {reports:?}");
}
