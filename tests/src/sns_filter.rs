//! Amazon SNS subscription filter policies, evaluated as the Amazon SNS Developer Guide documents
//! them, so a test can say which subscriber receives a message the way AWS would decide it.
//! moto_server cannot be trusted with this: its filter code treats a missing key as matching
//! `"exists": false` whatever else the message carries, so it delivers a message without any
//! attribute to a subscription AWS would skip. The pages this follows:
//!
//! - "Amazon SNS message filtering" and "Amazon SNS subscription filter policies": a message is
//!   delivered when every property name of the policy matches, each by at least one of its
//!   values (AND across names, OR within a name's list); properties the policy does not name are
//!   ignored; body policies assume the payload is a well-formed JSON object.
//! - "Amazon SNS subscription filter policy scope": `FilterPolicyScope` is `MessageAttributes`
//!   (the default) or `MessageBody`.
//! - "Filter policy constraints in Amazon SNS": attribute policies are not nested and are compared
//!   only with attributes of type `String`, `String.Array` and `Number`; string matching is
//!   case-sensitive.
//! - "Key matching": `"exists": true` matches a property that is present with a non-null value,
//!   `"exists": false` one that is absent, and "`exists: false` only matches if at least one
//!   attribute is present": with no message attributes at all, an attribute policy matches
//!   nothing. CloudWatch alarm notifications carry no attributes.
//! - "String value matching": exact values, `prefix`, `suffix`, `equals-ignore-case`,
//!   `anything-but` (a list, one value, or `{"prefix": ...}`; an array matches if any of its
//!   values is not excluded).
//! - "Numeric value matching": bare numbers match equal values, `numeric` takes `=`, `<`, `<=`,
//!   `>`, `>=` (a range is two comparisons), `anything-but` takes numbers too.
//!
//! What the policies here do not use (`$or`, `cidr`, `wildcard`) is refused with an error rather
//! than guessed at.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Where a subscription's filter policy looks (`FilterPolicyScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    /// The scope a subscription's `FilterPolicyScope` property names (absent: attributes).
    pub fn from_property(value: Option<&str>) -> Result<Scope, String> {
        match value {
            None | Some("MessageAttributes") => Ok(Scope::MessageAttributes),
            Some("MessageBody") => Ok(Scope::MessageBody),
            Some(other) => Err(format!("unknown FilterPolicyScope {other:?}")),
        }
    }
}

/// A message attribute as SNS carries it: its data type and its value as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub data_type: String,
    pub value: String,
}

impl Attribute {
    pub fn string(value: &str) -> Attribute {
        Attribute { data_type: "String".into(), value: value.into() }
    }
}

/// What a publisher sends: the body and the message attributes.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub body: String,
    pub attributes: BTreeMap<String, Attribute>,
}

/// A value of a property, as the matching rules see it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Text(String),
    Number(f64),
    /// `true`, `false` or `null` in a body.
    Other(Value),
}

/// Whether a subscription with `policy` in `scope` receives `message`.
pub fn matches(policy: &Value, scope: Scope, message: &Message) -> Result<bool, String> {
    let policy = policy.as_object().ok_or_else(|| format!("a filter policy is a JSON object, not {policy}"))?;
    match scope {
        Scope::MessageAttributes => {
            if let Some((name, _)) = policy.iter().find(|(_, v)| v.is_object()) {
                return Err(format!("attribute policies cannot be nested ({name})"));
            }
            // "Key matching": with no attributes, not even `exists: false` matches.
            if message.attributes.is_empty() {
                // Still refuse what this evaluator does not implement.
                check_policy(policy)?;
                return Ok(false);
            }
            let mut all = true;
            for (name, conditions) in policy {
                let values = message.attributes.get(name).map(attribute_values).transpose()?;
                all &= property_matches(name, conditions, values.as_deref())?;
            }
            Ok(all)
        }
        Scope::MessageBody => match serde_json::from_str::<Value>(&message.body) {
            Ok(Value::Object(body)) => body_matches(policy, &body),
            // Body policies assume a JSON object: any other payload matches nothing.
            _ => {
                check_policy(policy)?;
                Ok(false)
            }
        },
    }
}

fn check_policy(policy: &Map<String, Value>) -> Result<(), String> {
    for (name, conditions) in policy {
        match conditions {
            Value::Object(nested) => check_policy(nested)?,
            _ => {
                property_matches(name, conditions, None)?;
            }
        }
    }
    Ok(())
}

fn body_matches(policy: &Map<String, Value>, body: &Map<String, Value>) -> Result<bool, String> {
    let mut all = true;
    for (name, conditions) in policy {
        all &= match conditions {
            Value::Object(nested) => match body.get(name) {
                Some(Value::Object(inner)) => body_matches(nested, inner)?,
                _ => {
                    check_policy(nested)?;
                    false
                }
            },
            _ => {
                let values = body.get(name).map(body_values);
                property_matches(name, conditions, values.as_deref())?
            }
        };
    }
    Ok(all)
}

/// The values an attribute offers to matching; a type SNS does not compare offers none.
fn attribute_values(attribute: &Attribute) -> Result<Vec<Scalar>, String> {
    Ok(match attribute.data_type.as_str() {
        "String" => vec![Scalar::Text(attribute.value.clone())],
        "Number" => attribute.value.trim().parse::<f64>().map(Scalar::Number).into_iter().collect(),
        "String.Array" => match serde_json::from_str::<Value>(&attribute.value) {
            Ok(Value::Array(items)) => items.iter().map(scalar).collect(),
            _ => return Err(format!("String.Array attribute is not a JSON array: {}", attribute.value)),
        },
        _ => Vec::new(),
    })
}

fn body_values(value: &Value) -> Vec<Scalar> {
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => vec![scalar(other)],
    }
}

fn scalar(value: &Value) -> Scalar {
    match value {
        Value::String(text) => Scalar::Text(text.clone()),
        Value::Number(n) => n.as_f64().map_or_else(|| Scalar::Other(value.clone()), Scalar::Number),
        other => Scalar::Other(other.clone()),
    }
}

/// Whether a property (its values, `None` when absent) satisfies any of `conditions`.
fn property_matches(name: &str, conditions: &Value, values: Option<&[Scalar]>) -> Result<bool, String> {
    let conditions =
        conditions.as_array().ok_or_else(|| format!("{name}: a policy property takes a list, not {conditions}"))?;
    let mut any = false;
    for condition in conditions {
        any |= condition_matches(name, condition, values)?;
    }
    Ok(any)
}

fn condition_matches(name: &str, condition: &Value, values: Option<&[Scalar]>) -> Result<bool, String> {
    let present = values.unwrap_or_default();
    match condition {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            let wanted = scalar(condition);
            Ok(present.iter().any(|value| same(value, &wanted)))
        }
        Value::Object(operator) if operator.len() == 1 => {
            let (keyword, argument) = operator.iter().next().ok_or_else(|| format!("{name}: empty operator"))?;
            operator_matches(name, keyword, argument, values)
        }
        other => Err(format!("{name}: unsupported condition {other}")),
    }
}

fn operator_matches(name: &str, keyword: &str, argument: &Value, values: Option<&[Scalar]>) -> Result<bool, String> {
    let present = values.unwrap_or_default();
    let text = |what: &str| {
        argument.as_str().map(str::to_owned).ok_or_else(|| format!("{name}: {what} takes a string, not {argument}"))
    };
    let texts = || present.iter().filter_map(|v| if let Scalar::Text(t) = v { Some(t.as_str()) } else { None });
    match keyword {
        "exists" => match argument {
            Value::Bool(true) => Ok(present.iter().any(|v| v != &Scalar::Other(Value::Null))),
            Value::Bool(false) => Ok(values.is_none()),
            other => Err(format!("{name}: exists takes true or false, not {other}")),
        },
        "prefix" => {
            let prefix = text("prefix")?;
            Ok(texts().any(|t| t.starts_with(&prefix)))
        }
        "suffix" => {
            let suffix = text("suffix")?;
            Ok(texts().any(|t| t.ends_with(&suffix)))
        }
        "equals-ignore-case" => {
            let wanted = text("equals-ignore-case")?.to_lowercase();
            Ok(texts().any(|t| t.to_lowercase() == wanted))
        }
        "anything-but" => {
            let excluded = |value: &Scalar| -> Result<bool, String> {
                match argument {
                    Value::Array(list) => Ok(list.iter().any(|item| same(value, &scalar(item)))),
                    Value::Object(inner) => match inner.get("prefix").and_then(Value::as_str) {
                        Some(prefix) if inner.len() == 1 => {
                            Ok(matches!(value, Scalar::Text(t) if t.starts_with(prefix)))
                        }
                        _ => Err(format!("{name}: unsupported anything-but {argument}")),
                    },
                    single => Ok(same(value, &scalar(single))),
                }
            };
            let mut any_allowed = false;
            for value in present {
                any_allowed |= !excluded(value)?;
            }
            Ok(any_allowed)
        }
        "numeric" => {
            let terms = argument.as_array().ok_or_else(|| format!("{name}: numeric takes a list, not {argument}"))?;
            if terms.is_empty() || terms.len() % 2 != 0 || terms.len() > 4 {
                return Err(format!("{name}: numeric takes one or two (operator, number) pairs, not {argument}"));
            }
            let mut comparisons = Vec::new();
            for pair in terms.chunks(2) {
                let operator = pair[0].as_str().ok_or_else(|| format!("{name}: numeric operator {}", pair[0]))?;
                let bound = pair[1].as_f64().ok_or_else(|| format!("{name}: numeric bound {}", pair[1]))?;
                if !["=", "<", "<=", ">", ">="].contains(&operator) {
                    return Err(format!("{name}: unknown numeric operator {operator:?}"));
                }
                comparisons.push((operator, bound));
            }
            Ok(present.iter().any(|value| match value {
                Scalar::Number(n) => comparisons.iter().all(|(operator, bound)| match *operator {
                    "=" => n == bound,
                    "<" => n < bound,
                    "<=" => n <= bound,
                    ">" => n > bound,
                    _ => n >= bound,
                }),
                _ => false,
            }))
        }
        other => Err(format!("{name}: the {other:?} operator is not implemented by this evaluator")),
    }
}

fn same(value: &Scalar, wanted: &Scalar) -> bool {
    match (value, wanted) {
        (Scalar::Text(a), Scalar::Text(b)) => a == b,
        (Scalar::Number(a), Scalar::Number(b)) => a == b,
        (Scalar::Other(a), Scalar::Other(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attributes(pairs: &[(&str, &str, &str)]) -> Message {
        Message {
            body: String::new(),
            attributes: pairs
                .iter()
                .map(|(name, kind, value)| {
                    (name.to_string(), Attribute { data_type: kind.to_string(), value: value.to_string() })
                })
                .collect(),
        }
    }

    fn body(value: Value) -> Message {
        Message { body: value.to_string(), attributes: BTreeMap::new() }
    }

    fn attr(policy: Value, message: &Message) -> bool {
        matches(&policy, Scope::MessageAttributes, message).expect("supported policy")
    }

    fn in_body(policy: Value, message: &Message) -> bool {
        matches(&policy, Scope::MessageBody, message).expect("supported policy")
    }

    // The examples of "Key matching".
    #[test]
    fn key_matching_and_the_empty_attribute_rule() {
        let with_store =
            attributes(&[("store", "String", "fans"), ("customer_interests", "String.Array", "[\"baseball\"]")]);
        let without_store = attributes(&[("customer_interests", "String.Array", "[\"baseball\", \"basketball\"]")]);
        assert!(attr(json!({"store": [{"exists": true}]}), &with_store));
        assert!(!attr(json!({"store": [{"exists": true}]}), &without_store));
        assert!(!attr(json!({"store": [{"exists": false}]}), &with_store));
        assert!(attr(json!({"store": [{"exists": false}]}), &without_store));
        let none = Message { body: "{}".into(), attributes: BTreeMap::new() };
        assert!(!attr(json!({"store": [{"exists": false}]}), &none), "no attributes: nothing matches");
        assert!(!attr(json!({"severity": ["critical", {"exists": false}]}), &none));
        assert!(in_body(json!({"store": [{"exists": false}]}), &body(json!({"customer_interests": ["baseball"]}))));
        assert!(!in_body(json!({"store": [{"exists": false}]}), &body(json!({"store": "fans"}))));
    }

    // The examples of "String value matching".
    #[test]
    fn string_matching() {
        let rugby = attributes(&[("customer_interests", "String", "rugby")]);
        let baseball = attributes(&[("customer_interests", "String", "baseball")]);
        let mixed = attributes(&[("customer_interests", "String.Array", "[\"rugby\", \"baseball\"]")]);
        assert!(attr(json!({"customer_interests": ["rugby", "tennis"]}), &rugby));
        assert!(attr(json!({"customer_interests": ["rugby", "tennis"]}), &mixed));
        assert!(!attr(json!({"customer_interests": ["rugby", "tennis"]}), &baseball));
        assert!(!attr(json!({"customer_interests": ["Rugby"]}), &rugby), "case-sensitive");
        assert!(attr(json!({"customer_interests": [{"equals-ignore-case": "RUGBY"}]}), &rugby));
        assert!(attr(json!({"customer_interests": [{"prefix": "bas"}]}), &baseball));
        assert!(!attr(json!({"customer_interests": [{"prefix": "bas"}]}), &rugby));
        assert!(attr(json!({"customer_interests": [{"suffix": "ball"}]}), &baseball));
        let but = json!({"customer_interests": [{"anything-but": ["rugby", "tennis"]}]});
        assert!(attr(but.clone(), &baseball) && attr(but.clone(), &mixed) && !attr(but, &rugby));
        let order = json!({"event": [{"anything-but": {"prefix": "order-"}}]});
        assert!(attr(order.clone(), &attributes(&[("event", "String", "data-entry")])));
        assert!(attr(order.clone(), &attributes(&[("event", "String", "order_number")])));
        assert!(!attr(order, &attributes(&[("event", "String", "order-cancelled")])));
        assert!(in_body(json!({"customer_interests": ["rugby"]}), &body(json!({"customer_interests": "rugby"}))));
    }

    // The examples of "Numeric value matching".
    #[test]
    fn numeric_matching() {
        let price = |v: &str| attributes(&[("price_usd", "Number", v)]);
        assert!(attr(json!({"price_usd": [{"numeric": ["=", 301.5]}]}), &price("3.015e2")));
        assert!(attr(json!({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}), &price("150")));
        assert!(!attr(json!({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}), &price("150.5")));
        assert!(!attr(json!({"price_usd": [{"numeric": ["<", 0]}]}), &price("1")));
        let but = json!({"price": [{"anything-but": [100, 500]}]});
        assert!(attr(but.clone(), &attributes(&[("price", "Number", "100.1")])));
        assert!(!attr(but.clone(), &attributes(&[("price", "Number", "100")])));
        assert!(in_body(but.clone(), &body(json!({"price": [100, 50]}))));
        assert!(!in_body(but, &body(json!({"price": 100}))));
    }

    // "Amazon SNS subscription filter policies" (AND across names), "... scope" and the
    // constraints (attribute policies are flat; body policies nest and need a JSON object).
    #[test]
    fn scopes_and_logic() {
        let message = attributes(&[("severity", "String", "critical"), ("source", "String", "health-checker")]);
        assert!(attr(json!({"severity": ["critical"], "source": [{"prefix": "health"}]}), &message));
        assert!(!attr(json!({"severity": ["critical"], "source": ["scheduled-backup"]}), &message));
        assert!(!in_body(json!({"severity": ["critical"]}), &message), "attributes are not the body");
        let alarm = body(json!({"AlarmName": "x", "Trigger": {"Namespace": "AWS/Lambda"}}));
        assert!(in_body(json!({"Trigger": {"Namespace": ["AWS/Lambda"]}}), &alarm));
        assert!(!attr(json!({"AlarmName": ["x"]}), &alarm), "the body is not attributes");
        let text = Message { body: "CRITICAL - firing: app is down".into(), attributes: message.attributes };
        assert!(!in_body(json!({"severity": [{"exists": false}]}), &text), "a plain-text body matches nothing");
        assert!(matches(&json!({"a": {"b": ["c"]}}), Scope::MessageAttributes, &text).is_err());
        assert!(matches(&json!({"ip": [{"cidr": "10.0.0.0/24"}]}), Scope::MessageAttributes, &text).is_err());
    }
}
