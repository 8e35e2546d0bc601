//! `opsctl sentry apply` against the Sentry API stand-in, its settings in a secret in moto.

use ops_shared::secret_versions::SecretsManagerVersions;
use ops_testkit::aws::{Aws, unique};
use ops_testkit::sentry_api::{AfterCreate, SentryApi};
use opsctl::sentry_rules::{Outcome, SentryError, differences, run, runbook_rules, secret_name};
use serde_json::{Value, json};

const ERROR_RATE: &str = "CineView ops: error rate";
const LATENCY: &str = "CineView ops: P95 latency";
/// The app's transactions, not the ops functions' own (tagged `ops.component:cineview-ops`).
const APP_TRANSACTIONS: &str = "is_transaction:true !ops.component:cineview-ops";

struct Setup {
    aws: Aws,
    prefix: String,
    api: SentryApi,
}

impl Setup {
    /// A Sentry organization with no alert rules and the secret that points at it.
    async fn new(label: &str) -> Setup {
        let aws = Aws::new(ops_testkit::shared()).await;
        let prefix = unique(label);
        let api = SentryApi::start("cineview", "cineview-web").await;
        aws.secrets
            .create_secret()
            .name(secret_name(&prefix))
            .secret_string(api.secret_json())
            .send()
            .await
            .expect("create the secret");
        Setup { aws, prefix, api }
    }

    async fn put_secret(&self, value: &str) {
        self.aws
            .secrets
            .put_secret_value()
            .secret_id(secret_name(&self.prefix))
            .secret_string(value)
            .send()
            .await
            .expect("put");
    }

    async fn apply(&self, dry_run: bool) -> Result<Outcome, SentryError> {
        let store = SecretsManagerVersions::new(self.aws.secrets.clone());
        let http = ops_shared::http::client(std::time::Duration::from_secs(5)).expect("http");
        run(&store, &http, &self.prefix, dry_run).await
    }

    async fn applied(&self, dry_run: bool) -> Outcome {
        self.apply(dry_run).await.expect("apply")
    }

    fn rule(&self, name: &str) -> Value {
        let mut rules = self.api.rules_named(name);
        assert_eq!(rules.len(), 1, "one rule named {name}: {rules:?}");
        rules.remove(0)
    }

    /// What the stored rule `name` still differs in from the runbook.
    fn drift(&self, name: &str) -> Vec<String> {
        let spec = runbook_rules().into_iter().find(|s| s.name == name).expect("a runbook rule");
        let config = opsctl::sentry_rules::SentryApiConfig::parse("s", &self.api.secret_json()).expect("config");
        let rule = serde_json::from_value(self.rule(name)).expect("a rule as the API answers it");
        differences(&spec, &config, &rule)
    }
}

/// A rule made by hand in Sentry for something else.
fn unrelated_rule(name: &str) -> Value {
    json!({
        "name": name, "aggregate": "count()", "dataset": "events", "queryType": 0, "eventTypes": ["error"],
        "query": "", "timeWindow": 60, "thresholdType": 0, "projects": ["cineview-web"],
        "triggers": [{"label": "critical", "alertThreshold": 100,
                      "actions": [{"type": "email", "targetType": "user", "targetIdentifier": "7"}]}],
    })
}

fn trigger<'a>(rule: &'a Value, label: &str) -> &'a Value {
    rule["triggers"].as_array().and_then(|t| t.iter().find(|t| t["label"] == label)).expect("trigger")
}

#[tokio::test]
async fn first_apply_creates_the_two_runbook_rules_with_the_integration_action() {
    let s = Setup::new("sentry-first").await;
    let outcome = s.applied(false).await;
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.render());

    let writes = s.api.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes.iter().all(|w| w.method == "POST" && w.path == "/api/0/organizations/cineview/alert-rules/"));
    assert_eq!(s.api.rules().len(), 2);
    let app = json!(s.api.sentry_app_id);
    for (name, aggregate, warning, critical) in
        [(ERROR_RATE, "failure_rate()", 0.02, 0.05), (LATENCY, "p95(span.duration)", 1500.0, 3000.0)]
    {
        let rule = s.rule(name);
        assert_eq!(rule["aggregate"], aggregate, "{name}");
        assert_eq!(rule["dataset"], "events_analytics_platform", "{name}");
        assert_eq!(rule["query"], APP_TRANSACTIONS, "{name}");
        assert_eq!(rule["timeWindow"].as_f64(), Some(5.0), "{name}: 5 minutes");
        assert_eq!(rule["thresholdType"], 0, "{name}: above");
        assert_eq!(rule["projects"], json!(["cineview-web"]), "{name}");
        assert_eq!(rule["triggers"].as_array().map(Vec::len), Some(2), "{name}");
        for (label, threshold) in [("warning", warning), ("critical", critical)] {
            let t = trigger(&rule, label);
            assert_eq!(t["alertThreshold"].as_f64(), Some(threshold), "{name} {label}");
            let actions = t["actions"].as_array().expect("actions");
            assert_eq!(actions.len(), 1, "{name} {label}: {actions:?}");
            assert_eq!(actions[0]["type"], "sentry_app");
            assert_eq!(actions[0]["targetType"], "sentry_app");
            assert_eq!((&actions[0]["sentryAppId"], &actions[0]["targetIdentifier"]), (&app, &app));
        }
    }
    let text = outcome.render();
    assert!(text.contains(&format!("{ERROR_RATE} (id ")) && text.contains("was missing: created"), "{text}");
}

#[tokio::test]
async fn a_second_apply_sends_no_write_and_says_up_to_date() {
    let s = Setup::new("sentry-again").await;
    s.applied(false).await;
    s.api.clear_requests();

    let outcome = s.applied(false).await;
    assert_eq!(s.api.writes().len(), 0, "{:?}", s.api.writes());
    assert_eq!(outcome.exit_code(), 0);
    let text = outcome.render();
    assert!(text.ends_with("\nup to date\n"), "{text}");
    assert!(text.contains(&format!("{LATENCY} (id ")) && text.contains(": up to date\n"), "{text}");
}

#[tokio::test]
async fn a_hand_edited_rule_is_reported_by_name_and_put_back() {
    let s = Setup::new("sentry-edit").await;
    s.applied(false).await;
    let before = s.rule(ERROR_RATE);
    let latency = s.rule(LATENCY);
    s.api.edit_rule(ERROR_RATE, |rule| {
        rule["timeWindow"] = json!(10.0);
        rule["resolveThreshold"] = json!(0.01);
        rule["triggers"][0]["alertThreshold"] = json!(0.09);
        rule["triggers"][1]["actions"] =
            json!([{"id": "1", "type": "email", "targetType": "user", "targetIdentifier": "7", "sentryAppId": null}]);
    });
    s.api.clear_requests();

    let outcome = s.applied(false).await;
    let text = outcome.render();
    let id = before["id"].as_str().expect("id");
    for expected in [
        format!("{ERROR_RATE} (id {id}): differs from the runbook: put back"),
        "critical threshold: 9% (0.09) -> 5% (0.05)".to_owned(),
        "window: 10 min -> 5 min".to_owned(),
        "resolve threshold: 1% (0.01) -> automatic".to_owned(),
        format!("warning action: email to user 7 -> Sentry App {}", s.api.sentry_app_id),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(outcome.exit_code(), 0, "{text}");
    let writes = s.api.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), writes[0].path.clone()),
        ("PUT", format!("/api/0/organizations/cineview/alert-rules/{id}/"))
    );
    assert_eq!(s.drift(ERROR_RATE), Vec::<String>::new(), "put back as the runbook says");
    let after = s.rule(ERROR_RATE);
    assert_eq!(after["id"], before["id"], "the same rule, updated");
    assert_eq!(trigger(&after, "critical")["id"], trigger(&before, "critical")["id"], "its triggers kept");
    assert_eq!(s.rule(LATENCY), latency, "the other rule untouched");
}

#[tokio::test]
async fn a_deleted_rule_is_created_again() {
    let s = Setup::new("sentry-deleted").await;
    s.applied(false).await;
    let error_rate = s.rule(ERROR_RATE);
    s.api.delete_rule(LATENCY);
    s.api.clear_requests();

    let outcome = s.applied(false).await;
    let text = outcome.render();
    assert!(text.contains(&format!("{LATENCY} (id ")) && text.contains("was missing: created"), "{text}");
    let writes = s.api.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!((writes[0].method.as_str(), &writes[0].body.as_ref().expect("body")["name"]), ("POST", &json!(LATENCY)));
    assert_eq!(s.drift(LATENCY), Vec::<String>::new());
    assert_eq!(s.rule(ERROR_RATE), error_rate);
}

#[tokio::test]
async fn rules_of_other_names_are_never_touched() {
    let s = Setup::new("sentry-others").await;
    // Look-alike names, one even with the integration as its action.
    let mut lookalike = unrelated_rule("CineView ops: error rate (old)");
    let app = s.api.sentry_app_id;
    lookalike["triggers"][0]["actions"] =
        json!([{"type": "sentry_app", "targetType": "sentry_app", "targetIdentifier": app, "sentryAppId": app}]);
    let others = [s.api.add_rule(lookalike), s.api.add_rule(unrelated_rule("cineview ops: p95 latency"))];

    s.applied(false).await;
    s.api.edit_rule(ERROR_RATE, |rule| rule["triggers"][1]["alertThreshold"] = json!(0.03));
    s.api.delete_rule(LATENCY);
    s.applied(false).await;
    s.applied(true).await;

    let ours: Vec<Value> = [ERROR_RATE, LATENCY].iter().map(|n| s.rule(n)["id"].clone()).collect();
    for write in s.api.writes() {
        let body = write.body.as_ref().expect("a body");
        assert!([json!(ERROR_RATE), json!(LATENCY)].contains(&body["name"]), "{write:?}");
        if write.method == "PUT" {
            assert!(
                ours.iter().any(|id| write.path.ends_with(&format!("/{}/", id.as_str().unwrap_or_default()))),
                "{write:?}"
            );
        }
    }
    for other in others {
        let name = other["name"].as_str().expect("name");
        assert_eq!(s.rule(name), other, "{name} untouched");
    }
}

#[tokio::test]
async fn dry_run_reports_the_drift_and_writes_nothing() {
    let s = Setup::new("sentry-dry").await;
    let outcome = s.applied(true).await;
    assert_eq!(outcome.exit_code(), 1);
    assert!(outcome.render().contains(&format!("{ERROR_RATE}: is missing: would be created")), "{}", outcome.render());
    assert!(s.api.rules().is_empty() && s.api.writes().is_empty());

    s.applied(false).await;
    s.api.edit_rule(LATENCY, |rule| rule["triggers"][1]["alertThreshold"] = json!(2500.0));
    s.api.delete_rule(ERROR_RATE);
    let latency = s.rule(LATENCY);
    s.api.clear_requests();

    let outcome = s.applied(true).await;
    let text = outcome.render();
    assert_eq!(outcome.exit_code(), 1, "drift found: {text}");
    for expected in [
        format!("{ERROR_RATE}: is missing: would be created"),
        format!(
            "{LATENCY} (id {}): differs from the runbook: would be put back",
            latency["id"].as_str().unwrap_or_default()
        ),
        "  warning threshold: 2500 ms -> 1500 ms".to_owned(),
        "dry run: nothing was written".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(s.api.writes().len(), 0, "{:?}", s.api.writes());
    assert!(s.api.rules_named(ERROR_RATE).is_empty());
    assert_eq!(s.rule(LATENCY), latency);
}

#[tokio::test]
async fn a_rule_that_counts_the_ops_functions_transactions_is_reported_and_put_back() {
    let s = Setup::new("sentry-ops-tx").await;
    s.applied(false).await;
    for name in [ERROR_RATE, LATENCY] {
        s.api.edit_rule(name, |rule| rule["query"] = json!("is_transaction:true"));
    }
    s.api.clear_requests();

    let outcome = s.applied(true).await;
    let text = outcome.render();
    assert_eq!(outcome.exit_code(), 1, "drift found: {text}");
    let line = format!("query: \"is_transaction:true\" -> {APP_TRANSACTIONS:?}");
    assert_eq!(text.matches(&line).count(), 2, "both rules, {line:?} in:\n{text}");
    assert_eq!(s.api.writes().len(), 0, "{:?}", s.api.writes());

    let outcome = s.applied(false).await;
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.render());
    let writes = s.api.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for write in &writes {
        assert_eq!(write.method, "PUT");
        assert_eq!(write.body.as_ref().map(|b| &b["query"]), Some(&json!(APP_TRANSACTIONS)), "{write:?}");
    }
    for name in [ERROR_RATE, LATENCY] {
        assert_eq!(s.rule(name)["query"], APP_TRANSACTIONS, "{name}");
        assert_eq!(s.drift(name), Vec::<String>::new(), "{name}");
    }
}

#[tokio::test]
async fn a_bad_token_gives_the_401_error_text() {
    let s = Setup::new("sentry-401").await;
    let mut secret: Value = serde_json::from_str(&s.api.secret_json()).expect("json");
    secret["auth_token"] = json!("sntrys_revoked-token-value");
    s.put_secret(&secret.to_string()).await;

    let err = s.apply(false).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, SentryError::Unauthorized { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "Sentry refused the auth token in {} (401: Invalid token): put a valid token",
            secret_name(&s.prefix)
        )),
        "{text}"
    );
    assert!(!text.contains("revoked-token-value"), "the token is never shown: {text}");
    assert_eq!(SentryError::EXIT_CODE, 2);
    assert!(s.api.writes().is_empty());
}

#[tokio::test]
async fn other_access_problems_name_the_problem_and_what_to_do() {
    let s = Setup::new("sentry-access").await;
    let secret = secret_name(&s.prefix);
    let with = |field: &str, value: Value| {
        let mut json: Value = serde_json::from_str(&s.api.secret_json()).expect("json");
        json[field] = value;
        json.to_string()
    };
    let expect = async |value: String, wanted: &[&str]| {
        s.put_secret(&value).await;
        let text = s.apply(false).await.expect_err("refused").to_string();
        for part in wanted {
            assert!(text.contains(part), "missing {part:?} in: {text}");
        }
        assert!(!text.contains(&s.api.token), "{text}");
    };

    expect(
        with("organization", json!("cineview-typo")),
        &["has no organization \"cineview-typo\"", "https://de.sentry.io"],
    )
    .await;
    expect(
        with("project", json!("no-such-project")),
        &["has no project \"no-such-project\"", &format!("check project in {secret}")],
    )
    .await;
    expect(
        with("api_url", json!("http://127.0.0.1:9")),
        &["cannot reach Sentry at http://127.0.0.1:9", "check api_url"],
    )
    .await;
    expect(with("sentry_app_id", json!("cineview-ops")), &[&secret, "numeric id"]).await;
    expect("{\"organization\": \"cineview\"}".to_owned(), &[&format!("the Sentry API secret {secret} has no project")])
        .await;

    s.put_secret(&s.api.secret_json()).await;
    s.api.set_scopes(&["alerts:read"]);
    let text = s.apply(false).await.expect_err("refused").to_string();
    assert!(text.contains("(403: You do not have permission") && text.contains("alerts:write"), "{text}");

    let missing = Setup::new("sentry-missing").await;
    missing
        .aws
        .secrets
        .delete_secret()
        .secret_id(secret_name(&missing.prefix))
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete");
    let text = missing.apply(false).await.expect_err("refused").to_string();
    assert!(text.contains("does not exist") && text.contains("aws secretsmanager create-secret --name"), "{text}");
}

#[tokio::test]
async fn the_rule_list_is_read_across_pages() {
    let s = Setup::new("sentry-pages").await;
    s.api.cap_page_size(2);
    for i in 0..3 {
        s.api.add_rule(unrelated_rule(&format!("older rule {i}")));
    }
    s.applied(false).await;
    // Newer rules come first in Sentry's list, so the runbook's rules move to later pages.
    for i in 0..4 {
        s.api.add_rule(unrelated_rule(&format!("newer rule {i}")));
    }
    s.api.clear_requests();

    let outcome = s.applied(false).await;
    assert!(outcome.render().ends_with("\nup to date\n"), "{}", outcome.render());
    assert!(s.api.writes().is_empty(), "{:?}", s.api.writes());
    let lists = s.api.requests();
    assert_eq!(lists.len(), 5, "9 rules, 2 a page: {lists:?}");
    assert!(lists[1..].iter().all(|r| r.query.contains("cursor=0:")), "{lists:?}");
    assert_eq!(s.api.rules().len(), 9);
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_not_made_twice() {
    let s = Setup::new("sentry-lost").await;
    s.api.queue_after_create(&[AfterCreate::Status(502)]);
    let outcome = s.applied(false).await;
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.render());
    assert_eq!(s.api.rules_named(ERROR_RATE).len(), 1);
    assert_eq!(s.api.rules_named(LATENCY).len(), 1);
    assert_eq!(s.api.writes().len(), 2, "one create each: {:?}", s.api.writes());
}

/// The stand-in holds the client to Sentry's contract: what Sentry refuses, it refuses too.
#[tokio::test]
async fn the_stand_in_refuses_what_sentry_refuses() {
    let api = SentryApi::start("cineview", "cineview-web").await;
    let http = ops_shared::http::client(std::time::Duration::from_secs(5)).expect("http");
    let url = format!("{}/api/0/organizations/cineview/alert-rules/", api.base);
    let post = async |body: Value| {
        let response = http.post(&url).bearer_auth(&api.token).json(&body).send().await.expect("answer");
        (response.status().as_u16(), response.json::<Value>().await.expect("json"))
    };
    let app = api.sentry_app_id;
    let action = json!({"type": "sentry_app", "targetType": "sentry_app", "targetIdentifier": app, "sentryAppId": app});
    let good = json!({
        "name": "r", "aggregate": "failure_rate()", "dataset": "events_analytics_platform", "queryType": 1,
        "query": APP_TRANSACTIONS, "timeWindow": 5, "thresholdType": 0, "projects": ["cineview-web"],
        "triggers": [{"label": "critical", "alertThreshold": 0.05, "actions": [action]},
                     {"label": "warning", "alertThreshold": 0.02, "actions": [action]}],
    });
    let (status, rule) = post(good.clone()).await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!((rule["id"].is_string(), rule["timeWindow"].as_f64()), (true, Some(5.0)), "{rule}");

    let with = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = match key.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*key],
            };
        }
        at[path[path.len() - 1]] = value;
        body
    };
    for (body, field) in [
        (with(&["timeWindow"], json!(7)), "timeWindow"),
        (with(&["timeWindow"], json!("5")), "timeWindow"),
        (with(&["thresholdType"], json!(2)), "thresholdType"),
        (with(&["projects"], json!(["elsewhere"])), "projects"),
        (with(&["aggregate"], json!("error_rate()")), "aggregate"),
        (with(&["dataset"], json!("spans")), "dataset"),
        (with(&["triggers", "0", "label"], json!("warning")), "nonFieldErrors"),
        (with(&["triggers", "1", "alertThreshold"], json!(0.09)), "nonFieldErrors"),
        (with(&["resolveThreshold"], json!(0.03)), "nonFieldErrors"),
        (with(&["triggers", "0", "actions", "0", "sentryAppId"], Value::Null), "sentryApp"),
        (with(&["triggers", "0", "actions", "0", "targetIdentifier"], json!(app.to_string())), "targetIdentifier"),
        (with(&["triggers", "0", "actions", "0", "targetType"], json!("specific")), "targetType"),
        (with(&["triggers", "0", "actions", "0", "sentryAppId"], json!(1)), "sentryApp"),
        (with(&["query"], json!(7)), "query"),
        // Sentry's search syntax: `!` before a `key:value` filter, a value after the key, …
        (with(&["query"], json!("is_transaction:true !ops.component:")), "nonFieldErrors"),
        (with(&["query"], json!("is_transaction:true ! ops.component:cineview-ops")), "nonFieldErrors"),
        (with(&["query"], json!("(is_transaction:true OR")), "nonFieldErrors"),
        (with(&["query"], json!("ops.component:\"cineview-ops")), "nonFieldErrors"),
    ] {
        let (status, errors) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {errors}");
        assert!(errors.get(field).is_some(), "{field} named in {errors} for {body}");
    }
    let mut required = good.clone();
    required.as_object_mut().expect("object").remove("query");
    assert_eq!(post(required).await.1["query"], json!(["This field is required."]));
    let (status, errors) = post(with(&["dataset"], json!("transactions"))).await;
    assert_eq!(status, 400);
    assert!(
        errors[0].as_str().is_some_and(|e| e.starts_with("Creation of transaction-based alerts is disabled")),
        "{errors}"
    );

    let anonymous = http.get(&url).send().await.expect("answer");
    assert_eq!(anonymous.status().as_u16(), 401);
    let elsewhere =
        http.get(url.replace("/cineview/", "/other-org/")).bearer_auth(&api.token).send().await.expect("answer");
    assert_eq!(elsewhere.status().as_u16(), 404);
    assert_eq!(api.rules().len(), 1, "only the valid rule was made");
}
