//! The metric records the dashboard draws from health-checker, as Embedded Metric Format JSON:
//! each value declared under its namespace and dimension, with the value the run computed.

use health_checker::reports::rotation_metrics;
use health_checker::run::budget_metrics;
use serde_json::json;

#[test]
fn the_budget_left_is_a_percent_per_target() {
    let record = budget_metrics("ai-engine", 0.625).to_json();
    let directive = &record["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "CineView/Ops");
    assert_eq!(directive["Dimensions"], json!([["Target"]]));
    assert_eq!(directive["Metrics"], json!([{"Name": "BudgetLeftPercent", "Unit": "Percent"}]));
    assert_eq!(record["Target"], "ai-engine");
    assert_eq!(record["BudgetLeftPercent"], 62.5);
    assert_eq!(budget_metrics("ai-engine", -0.5).to_json()["BudgetLeftPercent"], -50.0, "overspent: below 0");
}

#[test]
fn the_days_to_rotation_are_per_secret() {
    let record = rotation_metrics("cineview-gemini-api", -3).to_json();
    let directive = &record["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "CineView/Ops");
    assert_eq!(directive["Dimensions"], json!([["Secret"]]));
    assert_eq!(directive["Metrics"], json!([{"Name": "DaysToRotation", "Unit": "None"}]));
    assert_eq!(record["Secret"], "cineview-gemini-api");
    assert_eq!(record["DaysToRotation"], -3.0);
}
