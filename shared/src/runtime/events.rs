//! Triggers shared by the scheduled functions: the classic EventBridge scheduled event, or a
//! manual invoke with a small JSON request (an empty `{}` included).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Trigger<M> {
    Schedule(Box<EventBridgeEvent>),
    Manual(M),
}

impl<M> Trigger<M> {
    pub fn is_scheduled(&self) -> bool {
        matches!(self, Trigger::Schedule(_))
    }
}

impl<'de, M: DeserializeOwned> Deserialize<'de> for Trigger<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Value::Object(map) = &value else {
            return Err(D::Error::custom("expected a JSON object: an EventBridge scheduled event or a manual request"));
        };
        if map.contains_key("detail-type") {
            let event: EventBridgeEvent = serde_json::from_value(value)
                .map_err(|e| D::Error::custom(format!("malformed EventBridge event: {e}")))?;
            if event.detail_type != "Scheduled Event" {
                return Err(D::Error::custom(format!(
                    "expected a \"Scheduled Event\", got detail-type {:?}",
                    event.detail_type
                )));
            }
            Ok(Trigger::Schedule(Box::new(event)))
        } else {
            serde_json::from_value(value)
                .map(Trigger::Manual)
                .map_err(|e| D::Error::custom(format!("malformed request: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Request {
        #[serde(default)]
        label: Option<String>,
    }

    #[test]
    fn scheduled_empty_and_manual_events_parse() {
        let scheduled = r#"{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events",
            "account":"123456789012","time":"2026-11-26T02:00:00Z","region":"us-east-1",
            "resources":["arn:aws:events:us-east-1:123456789012:rule/nightly"],"detail":{}}"#;
        assert!(serde_json::from_str::<Trigger<Request>>(scheduled).expect("scheduled").is_scheduled());
        assert!(matches!(serde_json::from_str::<Trigger<Request>>("{}"), Ok(Trigger::Manual(Request { label: None }))));
        let manual = serde_json::from_str::<Trigger<Request>>(r#"{"label":"pre-deploy"}"#).expect("manual");
        assert!(matches!(manual, Trigger::Manual(Request { label: Some(l) }) if l == "pre-deploy"));
    }

    #[test]
    fn other_shapes_are_refused_with_a_reason() {
        for (raw, says) in [
            ("[]", "JSON object"),
            (r#"{"lable":"x"}"#, "unknown field"),
            (
                r#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}"#,
                "Scheduled Event",
            ),
        ] {
            let err = serde_json::from_str::<Trigger<Request>>(raw).expect_err(raw).to_string();
            assert!(err.contains(says), "{raw}: {err}");
        }
    }
}
