use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;

use crate::error::RotationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

/// A validated rotation event as Secrets Manager sends it.
#[derive(Debug, Clone)]
pub struct RotationEvent {
    pub step: Step,
    pub secret_id: String,
    pub token: String,
    /// The newer `RotationToken`, passed on to PutSecretValue.
    pub rotation_token: Option<String>,
}

impl TryFrom<SecretsManagerSecretRotationEvent> for RotationEvent {
    type Error = RotationError;

    fn try_from(event: SecretsManagerSecretRotationEvent) -> Result<Self, Self::Error> {
        let step = match event.step.as_str() {
            "createSecret" => Step::Create,
            "setSecret" => Step::Set,
            "testSecret" => Step::Test,
            "finishSecret" => Step::Finish,
            other => {
                return Err(RotationError::InvalidEvent(format!(
                    "unknown Step {other:?}; expected createSecret, setSecret, testSecret or finishSecret"
                )));
            }
        };
        if event.secret_id.trim().is_empty() {
            return Err(RotationError::InvalidEvent("SecretId is empty".into()));
        }
        if event.client_request_token.trim().is_empty() {
            return Err(RotationError::InvalidEvent("ClientRequestToken is empty".into()));
        }
        let rotation_token = match event.other.get("RotationToken") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(token)) => Some(token.clone()),
            Some(_) => {
                return Err(RotationError::InvalidEvent("RotationToken is not a string".into()));
            }
        };
        Ok(RotationEvent { step, secret_id: event.secret_id, token: event.client_request_token, rotation_token })
    }
}
