//! The incident log on the local stack: an outage (down, reminders, resolved) through the
//! forwarder becomes one incident, written to the backup bucket when it closes, with the
//! timeline `opsctl incidents show` prints; the weekly digest counts it.

use std::time::Duration;

use chrono::Utc;
use ops_shared::alert::{Alert, Severity};
use ops_shared::incident;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::state::DynamoState;
use ops_testkit::aws::{Aws, unique};
use ops_testkit::names;

use super::alerts::{fixture_configured, sns_event};

#[tokio::test]
async fn an_outage_with_reminders_becomes_one_incident_with_its_timeline() {
    let aws = Aws::new(ops_testkit::shared()).await;
    // Every reminder is due at once (the deployed interval is an hour).
    let f = fixture_configured(None, |config| config.repeat_interval = Duration::ZERO).await;
    let app = unique("app");
    let key = format!("health-checker:{app}");
    let started = Utc::now();
    let send = |alert: Alert| {
        let message = serde_json::to_string(&alert).expect("alert");
        f.invoke(sns_event(&unique("msg"), &message, None))
    };
    let down = |title: &str| {
        Alert::new("health-checker", Severity::Critical, key.clone(), title).detail("target", app.clone())
    };
    for alert in
        [down(&format!("{app} is down")), down(&format!("{app} is still down")), down(&format!("{app} is still down"))]
    {
        assert_eq!(send(alert).await.expect("sent")["records"][0]["decision"], "sent");
    }
    let open = incident::since(
        &S3Objects::new(aws.s3.clone(), names::backup_bucket()),
        &DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE),
        started - chrono::Duration::minutes(1),
    )
    .await
    .expect("read");
    let ours = open.iter().find(|i| i.key == key).expect("an open incident");
    assert_eq!(ours.closed_at, None);
    assert!(ours.line(Utc::now().timestamp()).contains("OPEN"), "{}", ours.line(0));

    send(down(&format!("{app} recovered")).resolved()).await.expect("sent");
    let objects = S3Objects::new(aws.s3.clone(), names::backup_bucket());
    let state = DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE);
    let all = incident::since(&objects, &state, started - chrono::Duration::minutes(1)).await.expect("read");
    let ours: Vec<_> = all.iter().filter(|i| i.key == key).collect();
    assert_eq!(ours.len(), 1, "one incident: {ours:?}");
    let closed = ours[0];
    assert!(closed.closed_at.is_some());
    assert_eq!((closed.pages, closed.notifications, closed.timeline.len()), (3, 4, 4));
    let written = objects.list("reports/incidents/").await.expect("list");
    assert!(written.iter().any(|o| o.key == closed.object_key()), "written to the bucket: {}", closed.object_key());
    let timeline = closed.render_timeline(Utc::now().timestamp());
    for expected in [
        format!("# Incident {}: {app} is down", closed.id),
        "- Pages sent: 3; notifications: 4".to_owned(),
        format!("firing {key} (critical): {app} is down [sent, paged]"),
        format!("firing {key} (critical): {app} is still down [sent, paged]"),
        format!("resolved {key} (critical): {app} recovered [sent]"),
        "- Closed: ".to_owned(),
    ] {
        assert!(timeline.contains(&expected), "{expected:?} missing from:\n{timeline}");
    }
    let answer = f.invoke(serde_json::json!({"sweep": "ended"})).await.expect("swept");
    assert!(answer["incidents_written"].as_u64().is_some(), "{answer}");
}

/// A disaster-recovery drill's notices as `opsctl dr` sends them: the freeze opens an incident,
/// the assessment joins it (it names it), the restore's notice stays a notice, the thaw closes it.
#[tokio::test]
async fn a_drill_is_one_incident_from_freeze_to_thaw() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let f = fixture_configured(None, |_| ()).await;
    let secret = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{}", unique("db"));
    let freeze_key = format!("opsctl:dr-freeze:{secret}");
    let started = Utc::now();
    let freeze = Alert::new("opsctl", Severity::Warning, freeze_key.clone(), "Writes stopped: postgres");
    let assess = Alert::new(
        "opsctl",
        Severity::Warning,
        format!("opsctl:dr-assess:{secret}:{}", Utc::now().to_rfc3339()),
        "Data-loss assessment: postgres",
    )
    .detail(incident::JOINS_DETAIL, freeze_key.clone());
    let restored = Alert::new("opsctl", Severity::Warning, unique("opsctl:dr:postgres"), "Database restored: postgres");
    for alert in [freeze.clone(), assess, restored, freeze.resolved()] {
        let message = serde_json::to_string(&alert).expect("alert");
        f.invoke(sns_event(&unique("msg"), &message, None)).await.expect("forwarded");
    }
    let objects = S3Objects::new(aws.s3.clone(), names::backup_bucket());
    let state = DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE);
    let all = incident::since(&objects, &state, started - chrono::Duration::minutes(1)).await.expect("read");
    let drill: Vec<_> = all.iter().filter(|i| i.key == freeze_key).collect();
    assert_eq!(drill.len(), 1, "{all:?}");
    assert!(drill[0].closed_at.is_some(), "the thaw closes it");
    let titles: Vec<&str> = drill[0].timeline.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["Writes stopped: postgres", "Data-loss assessment: postgres", "Writes stopped: postgres"]);
    assert!(!all.iter().any(|i| i.title.starts_with("Database restored")), "the restore's notice is no incident");
}
