//! The ops dashboard draws only metrics that exist: the functions' own (as their metric
//! records declare them) and ones AWS documents for its services.

use std::collections::{BTreeMap, BTreeSet};

use ops_shared::Severity;
use ops_testkit::names;
use serde_json::Value;

const PREFIX: &str = "dashtest";

/// A metric as CloudWatch knows it: namespace, name, and its dimensions by name, with the
/// value where one is fixed (`None`: any value, e.g. one line per health target).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Drawn {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, Option<String>>,
}

/// The AWS metrics the dashboard may draw: (namespace, metric, dimension names it is
/// published with, the AWS documentation page that lists it).
const AWS_METRICS: &[(&str, &str, &[&str], &str)] = &[
    // "Lambda function metrics" (AWS Lambda Developer Guide),
    // https://docs.aws.amazon.com/lambda/latest/dg/monitoring-functions-metrics.html
    ("AWS/Lambda", "Errors", &["FunctionName"], "Lambda function metrics"),
    ("AWS/Lambda", "Throttles", &["FunctionName"], "Lambda function metrics"),
    ("AWS/Lambda", "Duration", &["FunctionName"], "Lambda function metrics"),
    ("AWS/Lambda", "Invocations", &["FunctionName"], "Lambda function metrics"),
    // "Available CloudWatch metrics for Amazon SQS" (Amazon SQS Developer Guide),
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", &["QueueName"], "Available CloudWatch metrics for Amazon SQS"),
    // "Monitoring Amazon SNS topics using CloudWatch" (Amazon SNS Developer Guide),
    // https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html
    ("AWS/SNS", "NumberOfNotificationsFailed", &["TopicName"], "Monitoring Amazon SNS topics using CloudWatch"),
];

/// The metric records the functions emit, read back from the Embedded Metric Format JSON
/// they write. Running every engine here would need a database, S3 and a prober target, so
/// the records come from the functions that build them, the ones the engines call before
/// `emit()`: the health checker's `target_metrics` (each target's check) and
/// `heartbeat_metrics` (end of every run), the backup's `succeeded_metrics` and
/// `failed_metrics` (`Backup::take`), the restore test's `report_metrics` (`Verifier::run`),
/// the health checker's `budget_metrics` (each check of a target with an objective) and
/// `rotation_metrics` (the daily report's secrets' lines), and the forwarder's
/// `forwarded_metrics` (each alert sent, one record per severity). The target's and the
/// secret's names are inputs, so their values are left open.
fn emitted() -> BTreeSet<Drawn> {
    let records = [
        (health_checker::run::target_metrics("app", true, 120).to_json(), vec!["Target"]),
        (health_checker::run::heartbeat_metrics().to_json(), vec![]),
        (ops_shared::backup::take::succeeded_metrics(4096, std::time::Duration::from_secs(3)).to_json(), vec![]),
        (ops_shared::backup::take::failed_metrics().to_json(), vec![]),
        (ops_shared::restore::report_metrics(true, 600_000, 5.0).to_json(), vec![]),
        (health_checker::run::budget_metrics("ai-engine", 0.8).to_json(), vec!["Target"]),
        (health_checker::reports::rotation_metrics("cineview-gemini-api", 40).to_json(), vec!["Secret"]),
        (alert_forwarder::forward::forwarded_metrics(Severity::Critical).to_json(), vec![]),
        (alert_forwarder::forward::forwarded_metrics(Severity::Warning).to_json(), vec![]),
        (alert_forwarder::forward::forwarded_metrics(Severity::Info).to_json(), vec![]),
    ];
    let mut emitted = BTreeSet::new();
    for (record, open) in records {
        for directive in record["_aws"]["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics") {
            let namespace = directive["Namespace"].as_str().expect("Namespace").to_owned();
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let dimensions: BTreeMap<String, Option<String>> = set
                    .as_array()
                    .expect("a dimension set")
                    .iter()
                    .map(|name| {
                        let name = name.as_str().expect("a dimension name");
                        let value =
                            (!open.contains(&name)).then(|| record[name].as_str().expect("its value").to_owned());
                        (name.to_owned(), value)
                    })
                    .collect();
                for metric in directive["Metrics"].as_array().expect("Metrics") {
                    emitted.insert(Drawn {
                        namespace: namespace.clone(),
                        name: metric["Name"].as_str().expect("Name").to_owned(),
                        dimensions: dimensions.clone(),
                    });
                }
            }
        }
    }
    emitted
}

/// The dashboard as CloudFormation creates it (placeholders resolved), and its body.
fn dashboard() -> (Value, Value) {
    let resolved = ops_testkit::iam::resolved_template(&[("NamePrefix", PREFIX)]).unwrap_or_else(|e| panic!("{e}"));
    let resources = resolved["Resources"].as_object().expect("Resources");
    let mut dashboards = resources.values().filter(|r| r["Type"] == "AWS::CloudWatch::Dashboard");
    let dashboard = dashboards.next().expect("the template declares a dashboard").clone();
    assert!(dashboards.next().is_none(), "one dashboard");
    let body = dashboard["Properties"]["DashboardBody"].as_str().expect("a resolved body");
    assert!(!body.contains("${"), "placeholders left in the body: {body}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is not JSON: {e}\n{body}"));
    (resolved, body)
}

/// Every metric the dashboard's widgets draw: metric rows (`[namespace, name, dimension,
/// value, …, {options}]`) and SEARCH expressions (`{namespace,dimension,…} MetricName="…"`).
fn drawn(body: &Value) -> Vec<Drawn> {
    let mut drawn = Vec::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        let Some(rows) = widget["properties"]["metrics"].as_array() else { continue };
        for row in rows {
            let row = row.as_array().expect("a metric row");
            let fields: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
            if let Some(expression) = row.iter().find_map(|f| f["expression"].as_str()) {
                drawn.push(searched(expression));
                continue;
            }
            assert!(
                fields.len() >= 2 && fields.len().is_multiple_of(2),
                "a metric row is namespace, name, pairs: {row:?}"
            );
            assert!(!fields.contains(&"."), "write rows out in full ('.' repeats the row above): {row:?}");
            drawn.push(Drawn {
                namespace: fields[0].to_owned(),
                name: fields[1].to_owned(),
                dimensions: fields[2..].chunks(2).map(|p| (p[0].to_owned(), Some(p[1].to_owned()))).collect(),
            });
        }
    }
    drawn
}

/// The metric a `SEARCH('{namespace,dimension,…} MetricName="name"', …)` expression finds.
fn searched(expression: &str) -> Drawn {
    let schema = expression
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(schema, _)| schema)
        .unwrap_or_else(|| panic!("only SEARCH expressions with a schema are drawn: {expression}"));
    let mut parts = schema.split(',').map(str::trim);
    let namespace = parts.next().expect("a namespace").to_owned();
    let name = expression
        .split_once("MetricName=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| panic!("a SEARCH names its metric: {expression}"));
    Drawn { namespace, name, dimensions: parts.map(|d| (d.to_owned(), None)).collect() }
}

#[test]
fn every_custom_metric_drawn_is_one_a_function_emits() {
    let (_, body) = dashboard();
    let emitted = emitted();
    let custom: Vec<Drawn> = drawn(&body).into_iter().filter(|m| !m.namespace.starts_with("AWS/")).collect();
    assert!(
        custom.len() >= 13,
        "latency, availability, budget, backups, restore tests, rotations and alerts are drawn: {custom:?}"
    );
    for name in ["BudgetLeftPercent", "DaysToRotation", "AlertsForwarded"] {
        assert!(custom.iter().any(|m| m.name == name), "the dashboard draws {name}: {custom:?}");
    }
    for metric in &custom {
        assert_eq!(metric.namespace, "CineView/Ops", "{metric:?}");
        let same = emitted.iter().find(|e| {
            e.namespace == metric.namespace
                && e.name == metric.name
                && e.dimensions.keys().eq(metric.dimensions.keys())
                && e.dimensions.iter().all(|(k, fixed)| fixed.is_none() || metric.dimensions[k] == *fixed)
        });
        assert!(same.is_some(), "the dashboard draws {metric:?}, which no function emits; they emit {emitted:#?}");
    }
}

#[test]
fn every_aws_metric_drawn_is_documented_and_names_this_stacks_resources() {
    let (resolved, body) = dashboard();
    let resources = resolved["Resources"].as_object().expect("Resources");
    let forwarder = resources["AlertForwarderFunction"]["Properties"]["FunctionName"].as_str().expect("FunctionName");
    let dead_letters = resources["AlertDeadLetterQueue"]["Properties"]["QueueName"].as_str().expect("QueueName");
    assert_eq!(forwarder, format!("{PREFIX}-alert-forwarder"));

    let aws: Vec<Drawn> = drawn(&body).into_iter().filter(|m| m.namespace.starts_with("AWS/")).collect();
    for metric in &aws {
        let documented = AWS_METRICS.iter().find(|(namespace, name, dimensions, _)| {
            *namespace == metric.namespace
                && *name == metric.name
                && metric.dimensions.keys().map(String::as_str).eq(dimensions.iter().copied())
        });
        let Some((_, _, _, page)) = documented else {
            panic!("the dashboard draws {metric:?}, which is not in the table of documented AWS metrics")
        };
        assert!(!page.is_empty());
        let named = |dimension: &str| metric.dimensions.get(dimension).cloned().flatten();
        match metric.namespace.as_str() {
            "AWS/Lambda" => assert_eq!(named("FunctionName").as_deref(), Some(forwarder), "{metric:?}"),
            "AWS/SQS" => assert_eq!(named("QueueName").as_deref(), Some(dead_letters), "{metric:?}"),
            _ => {}
        }
    }
    let drawn_names: BTreeSet<(&str, &str)> = aws.iter().map(|m| (m.namespace.as_str(), m.name.as_str())).collect();
    for expected in [("AWS/Lambda", "Errors"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible")] {
        assert!(drawn_names.contains(&expected), "the dashboard draws {expected:?}");
    }
}

#[test]
fn the_dashboard_is_named_for_the_stack_and_marks_the_thresholds() {
    let (resolved, body) = dashboard();
    let dashboard = resolved["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .find(|r| r["Type"] == "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboard.expect("dashboard")["Properties"]["DashboardName"], format!("{PREFIX}-ops"));
    let widgets = body["widgets"].as_array().expect("widgets");
    for widget in widgets.iter().filter(|w| w["type"] == "metric") {
        assert_eq!(widget["properties"]["region"], names::REGION, "{widget}");
    }
    let lines = |title: &str| -> Vec<f64> {
        let widget = widgets
            .iter()
            .find(|w| w["properties"]["title"].as_str().is_some_and(|t| t.starts_with(title)))
            .unwrap_or_else(|| panic!("no widget titled {title:?}"));
        let horizontal = widget["properties"]["annotations"]["horizontal"].as_array().cloned().unwrap_or_default();
        horizontal.iter().filter_map(|a| a["value"].as_f64()).collect()
    };
    assert_eq!(lines("Latency per health target"), [1500.0, 3000.0]);
    assert_eq!(lines("Restore test"), [30.0 * 60.0 * 1000.0]);
    assert_eq!(lines("Error budget left"), [0.0], "below 0: the budget is overspent");
    assert_eq!(lines("Days to each secret's rotation"), [14.0]);
    assert!(
        !widgets.iter().any(|w| w["properties"]["title"].as_str().is_some_and(|t| t.contains("no error-budget"))),
        "the budget is drawn now"
    );
}
