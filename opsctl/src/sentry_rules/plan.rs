//! The rule the runbook wants, and how a rule in Sentry differs from it.

use serde_json::{Map, Value};

use super::config::SentryApiConfig;
use super::model::{Action, MetricAlertRule, Num, Trigger};
use super::{DATASET, QUERY, QUERY_TYPE, RuleSpec, THRESHOLD_ABOVE, TIME_WINDOW_MINUTES};

/// The trigger action every trigger gets: the internal integration (a Sentry App), whose
/// webhook receives `metric_alert` deliveries. For `sentry_app` the reference asks
/// `targetType: "sentry_app"`, `targetIdentifier` the app's id as an integer, and `sentryAppId`.
fn integration_action(config: &SentryApiConfig) -> Action {
    Action {
        kind: Some("sentry_app".to_owned()),
        target_type: Some("sentry_app".to_owned()),
        target_identifier: Some(Value::from(config.sentry_app_id)),
        sentry_app_id: Some(Num::from(config.sentry_app_id)),
        extra: Map::new(),
    }
}

/// The whole rule as the runbook wants it. `existing` lends its trigger ids, so an update keeps
/// the triggers (and their incidents) instead of replacing them, and every field the project
/// does not set, which goes back as Sentry answered it. Every field the project owns is sent,
/// `resolveThreshold` and `environment` as null too: Sentry applies an update partially and
/// would keep a value left out.
pub fn desired(spec: &RuleSpec, config: &SentryApiConfig, existing: Option<&MetricAlertRule>) -> MetricAlertRule {
    let trigger = |label: &str, threshold: f64| {
        let kept = existing.and_then(|rule| rule.trigger(label));
        Trigger {
            id: kept.and_then(|t| t.id.clone()),
            label: Some(label.to_owned()),
            alert_threshold: Some(Num::from(threshold)),
            resolve_threshold: None,
            threshold_type: None,
            actions: vec![integration_action(config)],
            extra: kept.map(|t| t.extra.clone()).unwrap_or_default(),
        }
    };
    MetricAlertRule {
        id: existing.and_then(|rule| rule.id.clone()),
        name: Some(spec.name.to_owned()),
        aggregate: Some(spec.aggregate.to_owned()),
        dataset: Some(DATASET.to_owned()),
        query_type: Some(Num::from(u64::from(QUERY_TYPE))),
        query: Some(QUERY.to_owned()),
        time_window: Some(Num::from(u64::from(TIME_WINDOW_MINUTES))),
        threshold_type: Some(Num::from(u64::from(THRESHOLD_ABOVE))),
        resolve_threshold: None,
        environment: config.environment.clone(),
        projects: vec![config.project.clone()],
        // Sentry wants the critical trigger first, then the warning.
        triggers: vec![trigger("critical", spec.critical), trigger("warning", spec.warning)],
        extra: existing.map(|rule| rule.extra.clone()).unwrap_or_default(),
    }
}

/// What differs between rule `actual` and the runbook, one line each ("critical threshold:
/// 9% (0.09) -> 5% (0.05)"); empty when it matches. Only what the project sets is compared:
/// fields Sentry fills in itself (ids, dates, owner, `eventTypes`, `queryType`) are not.
pub fn differences(spec: &RuleSpec, config: &SentryApiConfig, actual: &MetricAlertRule) -> Vec<String> {
    let mut out = rule_differences(spec, config, actual);
    out.extend(trigger_differences(spec, config, actual));
    out
}

/// The rule's own fields.
fn rule_differences(spec: &RuleSpec, config: &SentryApiConfig, actual: &MetricAlertRule) -> Vec<String> {
    let mut out = Vec::new();
    for (field, had, want) in [
        ("dataset", &actual.dataset, DATASET),
        ("aggregate", &actual.aggregate, spec.aggregate),
        ("query", &actual.query, QUERY),
    ] {
        if had.as_deref().map(str::trim) != Some(want) {
            out.push(format!("{field}: {} -> {want:?}", had.as_ref().map_or("none".to_owned(), |s| format!("{s:?}"))));
        }
    }
    let window = actual.time_window.as_ref().map(Num::value);
    if !window.is_some_and(|w| same_number(w, f64::from(TIME_WINDOW_MINUTES))) {
        let had = window.map(|w| format!("{w} min")).unwrap_or_else(|| "none".to_owned());
        out.push(format!("window: {had} -> {TIME_WINDOW_MINUTES} min"));
    }
    let threshold_type = actual.threshold_type.as_ref();
    if threshold_type.map(Num::value) != Some(f64::from(THRESHOLD_ABOVE)) {
        let had = match threshold_type {
            Some(t) if t.value() == 1.0 => "below".to_owned(),
            Some(t) => t.to_string(),
            None => "none".to_owned(),
        };
        out.push(format!("threshold type: {had} -> above"));
    }
    if let Some(resolve) = &actual.resolve_threshold {
        let had = spec.unit.show(resolve.value());
        out.push(format!("resolve threshold: {had} -> automatic (below the warning threshold)"));
    }
    if actual.environment != config.environment {
        let shown = |e: Option<&str>| e.map(|e| format!("{e:?}")).unwrap_or_else(|| "all".to_owned());
        let (had, want) = (shown(actual.environment.as_deref()), shown(config.environment.as_deref()));
        out.push(format!("environment: {had} -> {want}"));
    }
    if actual.projects != [config.project.as_str()] {
        out.push(format!("projects: {:?} -> [{:?}]", actual.projects, config.project));
    }
    out
}

/// The critical and warning triggers: threshold and action; and any other trigger.
fn trigger_differences(spec: &RuleSpec, config: &SentryApiConfig, actual: &MetricAlertRule) -> Vec<String> {
    let mut out = Vec::new();
    for (label, want) in [("critical", spec.critical), ("warning", spec.warning)] {
        let Some(trigger) = actual.trigger(label) else {
            out.push(format!("{label} trigger: missing -> above {}", spec.unit.show(want)));
            continue;
        };
        match trigger.alert_threshold.as_ref().map(Num::value) {
            Some(had) if same_number(had, want) => {}
            Some(had) => out.push(format!("{label} threshold: {} -> {}", spec.unit.show(had), spec.unit.show(want))),
            None => out.push(format!("{label} threshold: none -> {}", spec.unit.show(want))),
        }
        if !matches!(&trigger.actions[..], [only] if is_integration_action(only, config)) {
            let had = if trigger.actions.is_empty() {
                "none".to_owned()
            } else {
                trigger.actions.iter().map(describe_action).collect::<Vec<_>>().join(", ")
            };
            out.push(format!("{label} action: {had} -> Sentry App {}", config.sentry_app_id));
        }
    }
    for trigger in &actual.triggers {
        let label = trigger.label.as_deref().unwrap_or("?");
        if label != "critical" && label != "warning" {
            out.push(format!("trigger {label:?}: present -> removed"));
        }
    }
    out
}

/// A number Sentry may answer as a number or as digits.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// How `action` reads: "Sentry App 42" or "email to user 7".
fn describe_action(action: &Action) -> String {
    let text = |value: Option<&str>| value.unwrap_or("?").to_owned();
    if action.kind.as_deref() == Some("sentry_app") {
        format!("Sentry App {}", action.sentry_app_id.as_ref().map_or("?".to_owned(), Num::to_string))
    } else {
        let target = match &action.target_identifier {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "?".to_owned(),
            Some(other) => other.to_string(),
        };
        format!("{} to {} {target}", text(action.kind.as_deref()), text(action.target_type.as_deref()))
    }
}

fn is_integration_action(action: &Action, config: &SentryApiConfig) -> bool {
    let id = config.sentry_app_id as f64;
    action.kind.as_deref() == Some("sentry_app")
        && action.target_type.as_deref() == Some("sentry_app")
        && action.sentry_app_id.as_ref().is_some_and(|v| same_number(v.value(), id))
        && action.target_identifier.as_ref().and_then(number).is_some_and(|v| same_number(v, id))
}
