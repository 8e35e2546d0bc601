//! Silences on the local stack: `opsctl silence add` writes one to the state table, the
//! forwarder holds back what it matches (never an alarm about the alert pipeline), `opsctl
//! status` lists it, and when it ends the scheduled sweep sends ops one notice of what it held
//! and what still fires, once.

use std::time::Duration;

use chrono::Utc;
use ops_shared::alert::{Alert, Severity};
use ops_shared::silence::Matcher;
use ops_shared::state::DynamoState;
use ops_testkit::aws::{Aws, unique};
use ops_testkit::names;
use opsctl::silences::{self, NewSilence};
use serde_json::json;

use super::alerts::{fixture_configured, sns_event};

#[tokio::test]
async fn a_silenced_alert_is_held_back_and_told_when_the_silence_ends() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let state = DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE);
    let f = fixture_configured(None, |_| ()).await;
    // A target of its own, so that no other test's alert on the shared table matches.
    let target = unique("app");
    let new = NewSilence {
        matchers: vec![
            Matcher::parse("source=health-checker").expect("m"),
            Matcher::parse(&format!("target={target}")).expect("m"),
        ],
        duration: chrono::Duration::hours(2),
        reason: "deploy 4.2".into(),
        created_by: "arn:aws:iam::123456789012:user/ops".into(),
    };
    let silence = silences::add(&state, new, Utc::now()).await.expect("added");

    let send = |alert: Alert| {
        let message = serde_json::to_string(&alert).expect("alert");
        f.invoke(sns_event(&unique("msg"), &message, None))
    };
    let down = Alert::new(
        "health-checker",
        Severity::Critical,
        format!("health-checker:{target}"),
        format!("{target} is down"),
    )
    .detail("target", target.clone());
    for _ in 0..2 {
        let answer = send(down.clone()).await.expect("forwarded");
        assert_eq!(answer["records"][0]["decision"], "silenced", "{answer}");
    }
    let other =
        Alert::new("health-checker", Severity::Critical, unique("health-checker:ai-engine"), "ai-engine is down")
            .detail("target", "ai-engine");
    assert_eq!(
        send(other).await.expect("forwarded")["records"][0]["decision"],
        "sent",
        "another target is not silenced"
    );
    f.one_notification().await;
    let wide = silences::add(
        &state,
        NewSilence {
            matchers: vec![
                Matcher::parse(&format!("dedup_key=cloudwatch:{target}-alert-forwarder-errors")).expect("m"),
            ],
            duration: chrono::Duration::hours(1),
            reason: "the pipeline alarm itself".into(),
            created_by: "ops".into(),
        },
        Utc::now(),
    )
    .await
    .expect("added");
    let alarm = json!({"AlarmName": format!("{target}-alert-forwarder-errors"), "NewStateValue": "ALARM",
        "OldStateValue": "OK", "NewStateReason": "Threshold crossed", "StateChangeTime": Utc::now().to_rfc3339(),
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{target}-alert-forwarder-errors"),
        "Trigger": {"MetricName": "Errors", "Namespace": "AWS/Lambda"}});
    let answer = f.invoke(sns_event(&unique("msg"), &alarm.to_string(), Some("ALARM"))).await.expect("forwarded");
    assert_eq!(answer["records"][0]["decision"], "sent", "a pipeline alarm is never silenced: {answer}");
    f.one_notification().await;

    let listed = silences::list(&state, Utc::now()).await.expect("list");
    let ours = listed.iter().find(|s| s.id == silence.id).expect("listed");
    assert_eq!(ours.held_count, 2);
    assert!(silences::render(&listed, Utc::now()).contains(&format!("{}  active until", silence.id)));

    // Ended by hand: the next sweep tells ops, once.
    silences::expire(&state, &silence.id, Utc::now()).await.expect("expired");
    silences::expire(&state, &wide.id, Utc::now()).await.expect("expired");
    let swept = f.invoke(json!({"sweep": "ended"})).await.expect("swept");
    assert!(swept["silence_notices"].as_u64().is_some_and(|n| n >= 2), "{swept}");
    let notes = f.ops.receive(2, Duration::from_secs(3)).await;
    let notice = notes
        .iter()
        .find(|n| n.message.contains(&format!("Silence {} ended", silence.id)))
        .unwrap_or_else(|| panic!("no notice: {:?}", notes.iter().map(|n| &n.subject).collect::<Vec<_>>()));
    assert!(
        notice
            .message
            .contains(&format!("- health-checker:{target}: 2 x \"{target} is down\" (critical), last firing")),
        "{}",
        notice.message
    );
    assert!(
        notice.message.contains(&format!("Still firing at its end: health-checker:{target}.")),
        "{}",
        notice.message
    );
    assert!(notice.message.contains("\"deploy 4.2\", set by arn:aws:iam::123456789012:user/ops"));
    let again = f.invoke(json!({"sweep": "ended"})).await.expect("swept");
    assert!(
        f.ops.receive(0, Duration::from_millis(700)).await.iter().all(|n| !n.message.contains(&silence.id)),
        "{again}"
    );
}
