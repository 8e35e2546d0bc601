//! The engine task with IAM enforced: the backup function, with the template's grants for a
//! stack that has the task, estimates from the last manifest and starts the task; the task's
//! own role runs a backup and a restore test and needs every action it has.

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::Scrubber;
use ops_shared::lambda::Function;
use ops_shared::restore::Selection;
use ops_testkit::aws::unique;
use ops_testkit::ecs::EngineTask;
use ops_testkit::iam::{Role, enforced, template_roles_with};
use ops_testkit::names;
use serde_json::json;

use super::{Scenario, database_secret, delivered, ensure, failed_backup};

fn roles_with_task() -> std::collections::BTreeMap<String, Role> {
    let params = [
        ("TaskImageUri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/cineview-engine:1"),
        ("TaskSubnets", "subnet-a"),
    ];
    template_roles_with(&params).unwrap_or_else(|e| panic!("{e}"))
}

/// An invocation with Lambda's 15 minutes ahead of it.
fn fifteen_minutes() -> Context {
    let mut ctx = Context::default();
    ctx.request_id = unique("request");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ctx.deadline = (now + Duration::from_secs(900)).as_millis() as u64;
    ctx
}

/// scheduled-backup on a stack with the engine task: a first backup runs here; once the last
/// backup's manifest says it took 10 hours, the next is handed to the task, which gets the
/// command.
async fn handoff(role: &Role) -> Scenario {
    let admin = enforced().admin();
    let engine = EngineTask::create(&admin.sdk, &unique("engine")).await?;
    let (database, secret) = database_secret().await?;
    let env = [
        ("DATABASE_SECRET_ARN", secret.as_str()),
        ("TASK_CLUSTER_ARN", engine.config.cluster.as_str()),
        ("TASK_DEFINITION_ARN", engine.config.task_definition.as_str()),
        ("TASK_SUBNETS", engine.config.subnets[0].as_str()),
    ];
    let (startup, calls) = enforced().startup(role, &env).await?;
    let handler = scheduled_backup::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(scheduled_backup::FUNCTION_NAME, handler, Scrubber::default());
    let invoke = || async {
        let answer = function.invoke(LambdaEvent::new(json!({}), fifteen_minutes())).await;
        answer
            .map(|a| serde_json::to_value(a).unwrap_or_default())
            .map_err(|e| format!("{}: {}", e.error_type, e.error_message))
    };
    let first = invoke().await?;
    let key = first["key"].as_str().ok_or(format!("a backup taken here: {first}"))?.to_owned();
    let manifest_key = ops_shared::backup::manifest_key(&key);
    let s3 = &admin.s3;
    let body =
        s3.get_object().bucket(names::backup_bucket()).key(&manifest_key).send().await.map_err(|e| format!("{e:?}"))?;
    let bytes = body.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
    let mut manifest: ops_shared::backup::Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    manifest.started_at = manifest.finished_at - chrono::Duration::hours(10);
    let slow = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(names::backup_bucket())
        .key(&manifest_key)
        .body(slow.into())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;

    let second = invoke().await?;
    ensure(second["handed_off_to"] == "fargate", format!("handed to the task: {second}"))?;
    ensure(second["estimate"]["source"]["last_run"] == key.as_str(), format!("estimated from {key}: {second}"))?;
    let tasks = engine.tasks().await?;
    ensure(
        tasks.len() == 1 && tasks[0]["overrides"]["containerOverrides"][0]["command"] == json!(["backup"]),
        format!("one task: {tasks:?}"),
    )?;
    ensure(!database.is_empty(), "a database")?;
    Ok(calls.actions())
}

/// The engine task's role: the backup engine takes a backup and the restore engine tests it,
/// as the task's binary runs them; ops hear the test passed; a failed backup is aborted.
async fn task(role: &Role) -> Scenario {
    let admin = enforced().admin();
    let alerts = admin.subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let (database, secret) = database_secret().await?;
    let env = [("DATABASE_SECRET_ARN", secret.as_str())];
    let (startup, backup_calls) = enforced().startup(role, &env).await?;
    let http = ops_shared::http::client(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let backup = scheduled_backup::engine(startup, http).map_err(|e| e.to_string())?;
    let (manifest, _) = backup.run(Some("task".to_owned()), None).await.map_err(|e| e.to_string())?;
    let (startup, restore_calls) = enforced().startup(role, &env).await?;
    let verifier = restore_verifier::engine(startup).map_err(|e| e.to_string())?;
    let report = verifier.run(Selection::Key(manifest.key.clone()), None).await.map_err(|e| e.to_string())?;
    ensure(report.passed(), format!("the restore test passed: {:?}", report.failures))?;
    delivered(&alerts, &[&format!("Backup/restore successful: {database}")]).await?;
    let mut used = backup_calls.actions();
    used.extend(restore_calls.actions());
    // A dump that dies mid-stream: the upload is aborted.
    used.extend(failed_backup(role).await?);
    Ok(used)
}

/// Grants the task's scenario cannot use: moto neither encrypts nor asks KMS.
const KMS: [&str; 2] = ["kms:GenerateDataKey", "kms:Decrypt"];

#[tokio::test]
async fn the_backup_starts_the_task_with_the_grants_a_stack_with_the_task_has_and_each_is_needed() {
    let roles = roles_with_task();
    let role = &roles["scheduled-backup"];
    let used = handoff(role).await.unwrap_or_else(|e| panic!("{e}"));
    for action in ["s3:ListBucket", "s3:GetObject"] {
        ensure(used.contains(action), format!("{action} is used: {used:?}")).unwrap_or_else(|e| panic!("{e}"));
    }
    // RunTask is signed outside the SDK's clients, so it is not among the recorded calls: each
    // grant the handoff needs is taken out in turn, RunTask included.
    for action in ["s3:ListBucket", "s3:GetObject", "ecs:RunTask"] {
        let outcome = handoff(&role.without(action)).await;
        assert!(outcome.is_err(), "the handoff worked without {action}");
    }
}

#[tokio::test]
async fn the_task_role_runs_a_backup_and_a_restore_test_and_holds_nothing_more() {
    let roles = roles_with_task();
    let role = &roles["engine-task"];
    let used = task(role).await.unwrap_or_else(|e| panic!("{e}"));
    let granted = role.actions();
    let unused: BTreeSet<&String> =
        granted.iter().filter(|a| !used.contains(*a) && !KMS.contains(&a.as_str())).collect();
    assert!(unused.is_empty(), "the task role grants what the engines never call: {unused:?}");
    let runs = used.iter().map(|action| async move { (action.clone(), task(&role.without(action)).await) });
    let survived: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(a, _)| a)
        .collect();
    assert!(survived.is_empty(), "the task's scenario works without {survived:?}: the grant is not needed");
}
