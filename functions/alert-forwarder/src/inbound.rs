//! What arrives on the alert topic, made into our alert: our own alert JSON, CloudWatch alarm
//! notifications (parsed leniently), and anything else as "unrecognised" with its raw text.

use ops_shared::alert::{Alert, Severity, cut_at_char};
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

/// Our alert JSON, a CloudWatch alarm, or unrecognised text.
pub fn normalise(message: &str, subject: Option<&str>, topic: &str) -> Alert {
    if let Ok(alert) = serde_json::from_str::<Alert>(message) {
        return alert;
    }
    if let Ok(alarm) = serde_json::from_str::<CloudWatchAlarm>(message) {
        return from_cloudwatch(&alarm);
    }
    unrecognised(message, subject, topic)
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
        let alert = normalise(metric_math, None, "t");
        assert_eq!(
            (alert.severity, alert.status, alert.source.as_str()),
            (Severity::Critical, Status::Firing, "cloudwatch")
        );
        assert_eq!(alert.details["metric"], "metric math expression");
        assert!(alert.links[0].url.contains("eu-west-1"));
        let ok = normalise(r#"{"AlarmName":"api-p95","NewStateValue":"OK"}"#, None, "t");
        assert_eq!(ok.status, Status::Resolved);
        let unknown = normalise(r#"{"AlarmName":"x","NewStateValue":"INSUFFICIENT_DATA"}"#, None, "t");
        assert_eq!(unknown.severity, Severity::Warning);
    }

    #[test]
    fn anything_else_is_forwarded_as_unrecognised_with_its_text() {
        let alert = normalise("disk almost full on bastion", Some("Cron"), "arn:t");
        assert_eq!(alert.source, "unrecognised");
        assert_eq!(alert.details["raw"], "disk almost full on bastion");
        assert_eq!(alert.title, "Unrecognised notification: Cron");
        assert_eq!(normalise("{\"a\":1}", None, "t").source, "unrecognised");
    }
}
