//! The one alert publisher: SNS, with `severity` and `source` message attributes, the subject
//! and body cut to SNS's limits.

use crate::adapters::aws::describe_sdk_error;
use crate::domain::alert::{Alert, AlertSink, MAX_BODY_BYTES, PublishError, ascii_subject, cut_at_char};

/// Publishes alerts to an SNS topic with `severity` and `source` message attributes.
#[derive(Clone, Debug)]
pub struct SnsAlertPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlertPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsAlertPublisher { client, topic_arn: topic_arn.into() }
    }
}

impl AlertSink for SnsAlertPublisher {
    async fn publish_message(&self, subject: &str, body: &str, alert: &Alert) -> Result<(), PublishError> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let attribute = |value: &str| {
            MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(|e| PublishError {
                topic: self.topic_arn.clone(),
                dedup_key: alert.dedup_key.clone(),
                detail: e.to_string(),
            })
        };
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(ascii_subject(subject))
            .message(cut_at_char(body, MAX_BODY_BYTES))
            .message_attributes("severity", attribute(alert.severity.as_str())?)
            .message_attributes("source", attribute(if alert.source.is_empty() { "unknown" } else { &alert.source })?)
            .send()
            .await
            .map_err(|err| PublishError {
                topic: self.topic_arn.clone(),
                dedup_key: alert.dedup_key.clone(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }
}
