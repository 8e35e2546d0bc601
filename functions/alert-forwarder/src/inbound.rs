//! What arrives on the alert topic, made into our alert: our own alert JSON, CloudWatch alarm
//! notifications (parsed leniently), the engine task's stopped events from EventBridge, and
//! anything else as "unrecognised" with its raw text.

use ops_shared::alert::{Alert, Severity, cut_at_char};
use ops_shared::handoff::exit_code;
use serde::Deserialize;
use serde_json::Value;

/// A CloudWatch alarm notification ("Notifying users on alarm changes", the SNS schemas for
/// metric and composite alarms); every field but the name and state optional, as real ones
/// vary: metric math alarms have no MetricName, descriptions are often null, composite alarms
/// carry `AlarmRule` and `TriggeringChildren` instead of `Trigger`, and `Region` is the
/// region's display name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchAlarm {
    pub alarm_name: String,
    pub new_state_value: String,
    #[serde(default)]
    pub alarm_description: Option<String>,
    #[serde(default)]
    pub new_state_reason: Option<String>,
    #[serde(default)]
    pub old_state_value: Option<String>,
    #[serde(default)]
    pub state_change_time: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub alarm_arn: Option<String>,
    #[serde(default, rename = "AWSAccountId")]
    pub account_id: Option<String>,
    #[serde(default)]
    pub trigger: Option<Value>,
    #[serde(default)]
    pub alarm_rule: Option<String>,
    /// ARNs as the schema says, or `{Arn, State: {Value, Timestamp}}` as real messages carry.
    #[serde(default)]
    pub triggering_children: Option<Vec<Value>>,
}

/// An "ECS Task State Change" event as EventBridge delivers it to an SNS target: the whole
/// event is the message. Only the fields the alert reads, all but the task's ARN and status
/// optional (Amazon ECS Developer Guide, "Amazon ECS task state change events"; the `detail` is
/// the API Reference's `Task` with ISO timestamps).
#[derive(Debug, Deserialize)]
pub struct TaskStateChange {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub region: Option<String>,
    pub detail: StoppedTask,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoppedTask {
    pub task_arn: String,
    pub last_status: String,
    #[serde(default)]
    pub cluster_arn: Option<String>,
    /// `TaskFailedToStart`, `EssentialContainerExited`, `UserInitiated`, `SpotInterruption`, ...
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub containers: Vec<TaskContainer>,
    #[serde(default)]
    pub overrides: Option<TaskOverrides>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainer {
    pub name: String,
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Why it stopped or never started, such as `CannotPullContainerError: ...`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverrides {
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
}

#[derive(Debug, Deserialize)]
pub struct ContainerOverride {
    #[serde(default)]
    pub command: Vec<String>,
}

/// Our alert JSON, a CloudWatch alarm, an engine task's stopped event, or unrecognised text.
/// `None`: a message that needs no one, an engine task that ran its work to the end (it told
/// ops itself) or had not stopped yet.
pub fn normalise(message: &str, subject: Option<&str>, topic: &str) -> Option<Alert> {
    if let Ok(alert) = serde_json::from_str::<Alert>(message) {
        return Some(alert);
    }
    if let Ok(alarm) = serde_json::from_str::<CloudWatchAlarm>(message) {
        return Some(from_cloudwatch(&alarm));
    }
    if let Ok(event) = serde_json::from_str::<TaskStateChange>(message)
        && event.source == "aws.ecs"
        && event.detail_type == "ECS Task State Change"
    {
        return from_stopped_task(&event);
    }
    Some(unrecognised(message, subject, topic))
}

/// A container's end in words: its exit code read as the engine's, and ECS's reason.
fn container_outcome(container: &TaskContainer) -> String {
    let exit = match container.exit_code {
        None => "no exit code: it never ran".to_owned(),
        Some(code) if code == i64::from(exit_code::NOT_STARTED) => {
            format!("exit code {code}: the engine refused its arguments or configuration, its log says which")
        }
        Some(137) => "exit code 137: killed, out of memory or stopped".to_owned(),
        Some(code) => format!("exit code {code}"),
    };
    match container.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => format!("{}: {exit}; {reason}", container.name),
        None => format!("{}: {exit}", container.name),
    }
}

/// A stopped engine task whose engine did not end its work (it ends with 0, or with `FAILED`
/// after alerting): it never started (an image that cannot be pulled, no route out, no
/// capacity), was stopped, was killed (out of memory), or its engine refused its arguments or
/// configuration. Nothing else tells ops: the function that handed off answered long ago.
pub fn from_stopped_task(event: &TaskStateChange) -> Option<Alert> {
    let task = &event.detail;
    if task.last_status != "STOPPED" {
        return None;
    }
    let exited = task.stop_code.as_deref() == Some("EssentialContainerExited");
    let reported =
        |c: &TaskContainer| c.exit_code.is_some_and(|code| code == 0 || code == i64::from(exit_code::FAILED));
    if exited && !task.containers.is_empty() && task.containers.iter().all(reported) {
        return None;
    }
    let command = task
        .overrides
        .as_ref()
        .and_then(|o| o.container_overrides.iter().find(|c| !c.command.is_empty()))
        .map(|c| c.command.clone())
        .unwrap_or_default();
    let work = command.first().map(String::as_str).unwrap_or("task");
    let (what, by_hand) = match work {
        "backup" => ("The backup", "Take one by hand (`opsctl backup --local`)"),
        "restore-test" => ("The restore test", "Run it by hand (`opsctl restore-test --local`)"),
        _ => ("The engine task's work", "Run it by hand"),
    };
    let id = task.task_arn.rsplit('/').next().unwrap_or(&task.task_arn);
    let stopped = task.stopped_reason.as_deref().unwrap_or("no reason given");
    let stop_code = task.stop_code.as_deref().unwrap_or("no stop code");
    let containers: Vec<String> = task.containers.iter().map(container_outcome).collect();
    let summary = format!(
        "The engine task {id} stopped before its work ended ({stop_code}: {stopped}), so it did not \
         report a result. {what} of this run may not have finished (`opsctl status` shows the last \
         backup and restore test): {by_hand} once the cause is fixed. Its log is the stream ending \
         in {id} in the engine task's log group."
    );
    let mut alert = Alert::new(
        "engine-task",
        Severity::Critical,
        format!("engine-task:{work}"),
        format!("{what} on Fargate stopped before it finished"),
    )
    .summary(summary)
    .detail("task", task.task_arn.clone())
    .detail("stop_code", stop_code.to_owned())
    .detail("stopped_reason", stopped.to_owned())
    .detail("command", command.join(" "));
    if !containers.is_empty() {
        alert = alert.detail("containers", containers.join(" | "));
    }
    if let Some(cluster) = &task.cluster_arn {
        alert = alert.detail("cluster", cluster.clone());
    }
    if let Some(by) = &task.started_by {
        alert = alert.detail("started_by", by.clone());
    }
    if let Some(region) = &event.region {
        alert = alert.detail("region", region.clone());
    }
    Some(alert)
}

pub fn from_cloudwatch(alarm: &CloudWatchAlarm) -> Alert {
    let name = &alarm.alarm_name;
    let state = alarm.new_state_value.as_str();
    let (severity, resolved) = match state {
        "ALARM" => (Severity::Critical, false),
        "OK" => (Severity::Critical, true),
        _ => (Severity::Warning, false), // INSUFFICIENT_DATA and anything new
    };
    // The ARN's region code; the message's `Region` is a display name ("US East (N. Virginia)").
    let arn_region = alarm.alarm_arn.as_deref().and_then(|arn| arn.split(':').nth(3)).filter(|r| !r.is_empty());
    let region = arn_region.unwrap_or("us-east-1");
    let trigger = alarm.trigger.as_ref();
    let metric = trigger
        .and_then(|t| t.get("MetricName"))
        .and_then(Value::as_str)
        .map(|m| format!("{}/{m}", trigger.and_then(|t| t.get("Namespace")).and_then(Value::as_str).unwrap_or("?")))
        .or_else(|| trigger.and_then(|t| t.get("Metrics")).map(|_| "metric math expression".to_owned()))
        .or_else(|| alarm.alarm_rule.as_ref().map(|rule| format!("composite alarm: {rule}")))
        .unwrap_or_else(|| "unknown metric".to_owned());
    let mut summary = alarm.new_state_reason.clone().unwrap_or_else(|| format!("{name} is {state}"));
    if let Some(description) = alarm.alarm_description.as_deref().filter(|d| !d.trim().is_empty()) {
        summary = format!("{description} {summary}");
    }
    let mut alert = Alert::new("cloudwatch", severity, format!("cloudwatch:{name}"), format!("{name} is {state}"))
        .summary(summary)
        .detail("alarm", name.clone())
        .detail("state", format!("{} -> {state}", alarm.old_state_value.as_deref().unwrap_or("?")))
        .detail("metric", metric)
        .detail("region", arn_region.map(str::to_owned).or_else(|| alarm.region.clone()).unwrap_or_default())
        .link(
            "alarm in the CloudWatch console",
            format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"),
        );
    if let Some(threshold) = trigger.and_then(|t| t.get("Threshold")) {
        alert = alert.detail("threshold", threshold.clone());
    }
    if let Some(at) = &alarm.state_change_time {
        alert = alert.detail("state_changed_at", at.clone());
    }
    let children: Vec<String> = alarm
        .triggering_children
        .iter()
        .flatten()
        .filter_map(|child| match child {
            Value::String(arn) => Some(arn.clone()),
            other => {
                let arn = other.get("Arn")?.as_str()?;
                let state = other.get("State").and_then(|s| s.get("Value")).and_then(Value::as_str).unwrap_or("?");
                Some(format!("{arn} ({state})"))
            }
        })
        .collect();
    if !children.is_empty() {
        alert = alert.detail("triggered_by", children.join(", "));
    }
    if resolved { alert.resolved() } else { alert }
}

pub fn unrecognised(message: &str, subject: Option<&str>, topic: &str) -> Alert {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(message.as_bytes()));
    let title = match subject.filter(|s| !s.trim().is_empty()) {
        Some(subject) => format!("Unrecognised notification: {subject}"),
        None => "Unrecognised notification".to_owned(),
    };
    Alert::new("unrecognised", Severity::Warning, format!("unrecognised:{}", &digest[..16]), title)
        .summary(format!("A message on {topic} was not an alert or a CloudWatch alarm; its text follows."))
        .detail("raw", cut_at_char(message, 200_000).to_owned())
        .detail("topic", topic.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_shared::alert::Status;

    #[test]
    fn cloudwatch_alarms_parse_leniently() {
        let metric_math = r#"{"AlarmName":"api-p95","AlarmDescription":null,"NewStateValue":"ALARM",
            "NewStateReason":"Threshold crossed","AlarmArn":"arn:aws:cloudwatch:eu-west-1:1:alarm:api-p95",
            "Trigger":{"Metrics":[{"Id":"m1","Expression":"a+b"}],"Threshold":1500}}"#;
        let alert = normalise(metric_math, None, "t").unwrap();
        assert_eq!(
            (alert.severity, alert.status, alert.source.as_str()),
            (Severity::Critical, Status::Firing, "cloudwatch")
        );
        assert_eq!(alert.details["metric"], "metric math expression");
        assert!(alert.links[0].url.contains("eu-west-1"));
        let ok = normalise(r#"{"AlarmName":"api-p95","NewStateValue":"OK"}"#, None, "t").unwrap();
        assert_eq!(ok.status, Status::Resolved);
        let unknown = normalise(r#"{"AlarmName":"x","NewStateValue":"INSUFFICIENT_DATA"}"#, None, "t").unwrap();
        assert_eq!(unknown.severity, Severity::Warning);
    }

    /// The sample event: the ECS Developer Guide's task state change example, stopped as a
    /// task whose image cannot be pulled stops ("CannotPullContainer task errors").
    fn stopped_task() -> Value {
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/alert-forwarder/sns-ecs-task-stopped.json")).unwrap();
        serde_json::from_str(sample["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap()
    }

    fn ended(stop_code: &str, exit_code: Option<i64>, command: &str) -> Option<Alert> {
        let mut event = stopped_task();
        event["detail"]["stopCode"] = stop_code.into();
        event["detail"]["stoppedReason"] = "Essential container in task exited".into();
        event["detail"]["containers"][0]["reason"] = Value::Null;
        event["detail"]["containers"][0]["exitCode"] = exit_code.into();
        event["detail"]["overrides"]["containerOverrides"][0]["command"] = serde_json::json!([command]);
        normalise(&event.to_string(), None, "t")
    }

    #[test]
    fn an_engine_task_that_never_ran_its_work_is_a_critical_alert_naming_why() {
        let alert = normalise(&stopped_task().to_string(), None, "t").expect("an alert");
        assert_eq!((alert.severity, alert.status), (Severity::Critical, Status::Firing));
        assert_eq!(alert.dedup_key, "engine-task:backup");
        assert_eq!(alert.title, "The backup on Fargate stopped before it finished");
        assert!(alert.summary.contains("TaskFailedToStart: CannotPullContainerError"), "{}", alert.summary);
        assert!(alert.summary.contains("opsctl backup --local"), "{}", alert.summary);
        assert!(alert.details["containers"].as_str().unwrap().contains("no exit code: it never ran; CannotPull"));
        assert_eq!(alert.details["started_by"], "scheduled-backup");

        let refused = ended("EssentialContainerExited", Some(2), "restore-test").expect("an alert");
        assert_eq!(refused.title, "The restore test on Fargate stopped before it finished");
        assert!(refused.details["containers"].as_str().unwrap().contains("refused its arguments or configuration"));
        let killed = ended("EssentialContainerExited", Some(137), "backup").expect("an alert");
        assert!(killed.details["containers"].as_str().unwrap().contains("out of memory"));
        assert!(ended("UserInitiated", Some(0), "backup").is_some(), "stopped by someone: the work may not be done");
        assert!(ended("SpotInterruption", None, "backup").is_some());
    }

    #[test]
    fn an_engine_task_that_ended_its_work_has_told_ops_itself() {
        assert!(ended("EssentialContainerExited", Some(0), "backup").is_none(), "succeeded");
        assert!(ended("EssentialContainerExited", Some(1), "backup").is_none(), "failed, and the engine alerted");
        let mut running = stopped_task();
        running["detail"]["lastStatus"] = "RUNNING".into();
        assert!(normalise(&running.to_string(), None, "t").is_none());
        let mut other = stopped_task();
        other["detail-type"] = "ECS Container Instance State Change".into();
        assert_eq!(normalise(&other.to_string(), None, "t").unwrap().source, "unrecognised");
    }

    #[test]
    fn anything_else_is_forwarded_as_unrecognised_with_its_text() {
        let alert = normalise("disk almost full on bastion", Some("Cron"), "arn:t").unwrap();
        assert_eq!(alert.source, "unrecognised");
        assert_eq!(alert.details["raw"], "disk almost full on bastion");
        assert_eq!(alert.title, "Unrecognised notification: Cron");
        assert_eq!(normalise("{\"a\":1}", None, "t").unwrap().source, "unrecognised");
    }
}
