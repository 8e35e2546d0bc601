//! The objects of Sentry's alert-rules API this command reads and writes: a metric alert rule,
//! its triggers and their actions, with the field names of Sentry's reference (camelCase).
//!
//! Sentry answers more than the project sets (ids, dates, owner, `eventTypes`, …): every field
//! not modelled here is kept in `extra` and sent back as it was when a rule is written back.
//! Reading is lenient: a field of an unexpected type reads as absent, so one odd rule of the
//! organization never stops the command.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

/// A number as Sentry answers it (`5`, `5.0`, or `"5"`), written as it was given: Sentry wants
/// `timeWindow` as an integer and thresholds as numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Num(Number);

impl Num {
    pub fn value(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Num {
    fn from(value: u64) -> Num {
        Num(Number::from(value))
    }
}

impl From<f64> for Num {
    /// A threshold; not finite (never the runbook's) reads as 0.
    fn from(value: f64) -> Num {
        Num(Number::from_f64(value).unwrap_or_else(|| Number::from(0)))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Num, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => Ok(Num(n)),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Num)
                .ok_or_else(|| serde::de::Error::custom("not a number")),
            _ => Err(serde::de::Error::custom("not a number")),
        }
    }
}

/// A metric alert rule (`/api/0/organizations/{org}/alert-rules/[{id}/]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricAlertRule {
    /// Sentry's id (a string; a number is read as its digits). Never sent: it is in the URL.
    #[serde(default, deserialize_with = "lenient_id", skip_serializing)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub aggregate: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub dataset: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub query_type: Option<Num>,
    #[serde(default, deserialize_with = "lenient")]
    pub query: Option<String>,
    /// Minutes.
    #[serde(default, deserialize_with = "lenient")]
    pub time_window: Option<Num>,
    /// 0: above the threshold, 1: below.
    #[serde(default, deserialize_with = "lenient")]
    pub threshold_type: Option<Num>,
    /// Sent as null to let Sentry resolve below the warning threshold.
    #[serde(default, deserialize_with = "lenient")]
    pub resolve_threshold: Option<Num>,
    /// Sent as null for every environment.
    #[serde(default, deserialize_with = "lenient")]
    pub environment: Option<String>,
    /// Project slugs.
    #[serde(default, deserialize_with = "strings")]
    pub projects: Vec<String>,
    /// `critical`, then `warning`.
    #[serde(default, deserialize_with = "lenient_list")]
    pub triggers: Vec<Trigger>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MetricAlertRule {
    /// The trigger labelled `label` (`critical` or `warning`).
    pub fn trigger(&self, label: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| t.label.as_deref() == Some(label))
    }
}

/// A trigger of a rule: a threshold and what is done when it is crossed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Sentry's id: an update that names it keeps the trigger (and its incidents).
    #[serde(default, deserialize_with = "lenient_id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub alert_threshold: Option<Num>,
    /// The rule's, repeated by Sentry in each trigger; never sent.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub resolve_threshold: Option<Num>,
    /// The rule's, repeated by Sentry in each trigger; never sent.
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub threshold_type: Option<Num>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub actions: Vec<Action>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a trigger does: notify a Sentry App (the internal integration), e-mail a user, ….
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(rename = "type", default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// An integer for a Sentry App (the app's id), a string for a user, team or address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_identifier: Option<Value>,
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub sentry_app_id: Option<Num>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The value, or none when it is null or of another type.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).ok())
}

fn lenient_list<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).unwrap_or_default())
}

/// The strings of a list; anything else in it is left out.
fn strings<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    })
}

fn lenient_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(id) => Some(id),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_the_project_does_not_set_are_kept_and_odd_ones_read_as_absent() {
        let answered = json!({
            "id": 170001, "name": "r", "timeWindow": "5", "thresholdType": "above", "owner": "team:7",
            "projects": ["web", 3], "eventTypes": ["trace_item_span"],
            "triggers": [{"id": "9", "label": "critical", "alertThreshold": 0.05, "dateCreated": "d",
                          "actions": [{"id": "4", "type": "sentry_app", "targetIdentifier": 42, "desc": "x"}]}],
        });
        let rule: MetricAlertRule = serde_json::from_value(answered).expect("a rule");
        assert_eq!(rule.id.as_deref(), Some("170001"));
        assert_eq!((rule.time_window.as_ref().map(Num::value), rule.threshold_type.as_ref()), (Some(5.0), None));
        assert_eq!(rule.projects, ["web"]);
        assert_eq!(rule.extra["owner"], "team:7");
        let trigger = rule.trigger("critical").expect("critical");
        assert_eq!((trigger.id.as_deref(), trigger.extra["dateCreated"].as_str()), (Some("9"), Some("d")));
        assert_eq!(trigger.actions[0].extra["desc"], "x");
        let written = serde_json::to_value(&rule).expect("json");
        assert_eq!(
            (written.get("id"), &written["owner"], &written["eventTypes"]),
            (None, &json!("team:7"), &json!(["trace_item_span"]))
        );
        assert_eq!(written["triggers"][0]["actions"][0]["id"], "4");
    }
}
