//! IAM's policy evaluation for a request within one account, written from AWS's IAM User Guide:
//! "Policy evaluation logic", "How AWS enforcement code logic evaluates requests to allow or
//! deny access", "Policy evaluation for requests within a single account" and "IAM JSON policy
//! elements: Condition operators". moto enforces identity policies only (and not their
//! conditions), so what a bucket policy denies is proven here instead.
//!
//! What it implements: an explicit `Deny` in any applicable policy wins; otherwise an `Allow`
//! in the identity policies or in the resource policy allows (within one account either
//! suffices); otherwise the request is implicitly denied. `Action`/`NotAction` match with `*`
//! and `?`, case-insensitively; `Resource`/`NotResource` with `*` and `?`, case-sensitively; a
//! resource policy's `Principal` is `"*"` or `{"AWS": [...]}` of ARNs. Conditions: every
//! operator of a statement, and every key of an operator, must hold; any one of a key's values
//! may match; a key missing from the request context fails the condition (except with
//! `...IfExists`). Operators: `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`,
//! `ArnEquals`, `ArnLike`, `ArnNotEquals`, `ArnNotLike`, `Bool`, each with `IfExists`. Anything
//! else fails loudly rather than being guessed.

use std::collections::BTreeMap;

use serde_json::Value;

/// One request as IAM sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The principal's ARN (for a role session, the role's ARN, as `aws:PrincipalArn` has it).
    pub principal: String,
    /// `service:Action`, e.g. `s3:DeleteObject`.
    pub action: String,
    pub resource: String,
    /// Condition keys and their values; `aws:PrincipalArn` is added from `principal`.
    pub context: BTreeMap<String, String>,
}

impl Request {
    /// A request over TLS (`aws:SecureTransport` true), as the SDK makes every request.
    pub fn new(principal: &str, action: &str, resource: &str) -> Request {
        let context = BTreeMap::from([("aws:SecureTransport".to_owned(), "true".to_owned())]);
        Request { principal: principal.to_owned(), action: action.to_owned(), resource: resource.to_owned(), context }
    }

    fn key(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case("aws:PrincipalArn") {
            return Some(&self.principal);
        }
        self.context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    ExplicitlyDenied,
    ImplicitlyDenied,
}

/// The decision on `request` given the principal's identity policies and the resource's policy.
pub fn evaluate(request: &Request, identity: &[&Value], resource_policy: Option<&Value>) -> Result<Decision, String> {
    let mut allowed = false;
    let documents = identity.iter().map(|d| (*d, false)).chain(resource_policy.map(|d| (d, true)));
    for (document, is_resource_policy) in documents {
        for statement in statements(document) {
            if !applies(&statement, request, is_resource_policy)? {
                continue;
            }
            match statement["Effect"].as_str() {
                Some("Deny") => return Ok(Decision::ExplicitlyDenied),
                Some("Allow") => allowed = true,
                other => return Err(format!("a statement's Effect is {other:?}")),
            }
        }
    }
    Ok(if allowed { Decision::Allowed } else { Decision::ImplicitlyDenied })
}

fn statements(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(all) => all.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

fn applies(statement: &Value, request: &Request, is_resource_policy: bool) -> Result<bool, String> {
    let action = |patterns: &Value| strings(patterns).iter().any(|p| wildcard(p, &request.action, false));
    let action_matches = match (&statement.get("Action"), &statement.get("NotAction")) {
        (Some(patterns), _) => action(patterns),
        (None, Some(patterns)) => !action(patterns),
        (None, None) => return Err("a statement has neither Action nor NotAction".to_owned()),
    };
    let resource = |patterns: &Value| strings(patterns).iter().any(|p| wildcard(p, &request.resource, true));
    let resource_matches = match (&statement.get("Resource"), &statement.get("NotResource")) {
        (Some(patterns), _) => resource(patterns),
        (None, Some(patterns)) => !resource(patterns),
        (None, None) => return Err("a statement has neither Resource nor NotResource".to_owned()),
    };
    let principal_matches = !is_resource_policy || principal_matches(&statement["Principal"], &request.principal)?;
    Ok(action_matches && resource_matches && principal_matches && conditions_hold(&statement["Condition"], request)?)
}

fn principal_matches(principal: &Value, arn: &str) -> Result<bool, String> {
    match principal {
        Value::String(any) if any == "*" => Ok(true),
        Value::Object(by_kind) => {
            Ok(by_kind.get("AWS").is_some_and(|arns| strings(arns).iter().any(|a| a == "*" || a == arn)))
        }
        other => Err(format!("a resource policy's Principal is {other}")),
    }
}

fn conditions_hold(conditions: &Value, request: &Request) -> Result<bool, String> {
    let Some(operators) = conditions.as_object() else {
        return Ok(true);
    };
    for (operator, keys) in operators {
        let (name, if_exists) = match operator.strip_suffix("IfExists") {
            Some(name) => (name, true),
            None => (operator.as_str(), false),
        };
        for (key, wanted) in keys.as_object().ok_or_else(|| format!("condition {operator} is not an object"))? {
            let Some(actual) = request.key(key) else {
                if if_exists {
                    continue;
                }
                return Ok(false);
            };
            let wanted = strings(wanted);
            let any = |matches: &dyn Fn(&str) -> bool| wanted.iter().any(|w| matches(w));
            let holds = match name {
                "StringEquals" | "ArnEquals" => any(&|w| w == actual),
                "StringNotEquals" | "ArnNotEquals" => !any(&|w| w == actual),
                "StringLike" | "ArnLike" => any(&|w| wildcard(w, actual, true)),
                "StringNotLike" | "ArnNotLike" => !any(&|w| wildcard(w, actual, true)),
                "Bool" => any(&|w| w.eq_ignore_ascii_case(actual)),
                other => return Err(format!("condition operator {other} is not implemented here")),
            };
            if !holds {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// IAM's pattern matching: `*` any run of characters, `?` any one.
fn wildcard(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    let fold = |s: &str| if case_sensitive { s.to_owned() } else { s.to_ascii_lowercase() };
    let (pattern, text): (Vec<char>, Vec<char>) = (fold(pattern).chars().collect(), fold(text).chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_documents() {
        assert!(wildcard("s3:Get*", "s3:getobject", false));
        assert!(!wildcard("s3:Get*", "s3:getobject", true));
        assert!(wildcard("arn:aws:s3:::b/backups/*", "arn:aws:s3:::b/backups/app/x.dump", true));
        assert!(!wildcard("arn:aws:s3:::b/backups/*", "arn:aws:s3:::b/reports/x.json", true));
        assert!(wildcard("a?c", "abc", true) && !wildcard("a?c", "ac", true));
    }

    #[test]
    fn an_explicit_deny_wins_and_nothing_allowed_is_denied() {
        let allow = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
            "Resource": "arn:aws:s3:::b/*", "Condition": {"ArnEquals": {"aws:PrincipalArn": ["arn:aws:iam::1:role/r"]}}}]});
        let request = Request::new("arn:aws:iam::1:role/r", "s3:DeleteObject", "arn:aws:s3:::b/k");
        assert_eq!(evaluate(&request, &[&allow], Some(&deny)), Ok(Decision::ExplicitlyDenied));
        let other = Request::new("arn:aws:iam::1:role/admin", "s3:DeleteObject", "arn:aws:s3:::b/k");
        assert_eq!(evaluate(&other, &[&allow], Some(&deny)), Ok(Decision::Allowed));
        assert_eq!(evaluate(&other, &[], Some(&deny)), Ok(Decision::ImplicitlyDenied));
        let mut missing = other.clone();
        missing.context.clear();
        let tls = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert_eq!(evaluate(&other, &[&allow], Some(&tls)), Ok(Decision::Allowed));
        assert_eq!(
            evaluate(&missing, &[&allow], Some(&tls)),
            Ok(Decision::Allowed),
            "an absent key fails the condition"
        );
        missing.context.insert("aws:SecureTransport".into(), "false".into());
        assert_eq!(evaluate(&missing, &[&allow], Some(&tls)), Ok(Decision::ExplicitlyDenied));
    }
}
