//! The record each alert sent to ops adds to the dashboard's alerts-by-severity widget, as
//! Embedded Metric Format JSON.

use alert_forwarder::forward::forwarded_metrics;
use ops_shared::Severity;
use serde_json::json;

#[test]
fn each_alert_sent_counts_once_under_its_severity() {
    for (severity, name) in [(Severity::Critical, "critical"), (Severity::Warning, "warning"), (Severity::Info, "info")]
    {
        let record = forwarded_metrics(severity).to_json();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "CineView/Ops");
        assert_eq!(directive["Dimensions"], json!([["Severity"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "AlertsForwarded", "Unit": "Count"}]));
        assert_eq!(record["Severity"], name);
        assert_eq!(record["AlertsForwarded"], 1.0);
    }
}
