//! secret-rotation wired to the local stack for one secret, driven as Secrets Manager would.

use std::time::Duration;

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use ops_shared::lambda::Function;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::secrets::read_stage;
use ops_shared::{Scrubber, SnsAlertPublisher};
use secret_rotation::{RotationConfig, Rotator, StepReport};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::aws::{Aws, Inbox, unique};

pub struct RotationUnderTest {
    pub aws: Aws,
    /// What the function publishes, as a subscriber of its alert topic receives it.
    pub alerts: Inbox,
    pub secret: String,
    /// The scrubber the rotation registers every value it reads or writes with.
    pub scrubber: Scrubber,
    function: Function<Rotator<SecretsManagerVersions, SnsAlertPublisher>>,
}

impl RotationUnderTest {
    /// A secret named after `name` holding `value`, tagged `strategy`, and the function with an
    /// alert topic of its own, HTTP calls timing out after `http_timeout`.
    pub async fn new(
        name: &str,
        value: &Value,
        strategy: &str,
        http_timeout: Duration,
        config: RotationConfig,
    ) -> RotationUnderTest {
        let aws = Aws::new(crate::shared()).await;
        let topic = aws.create_topic(&unique(&format!("{name}-alerts"))).await;
        let alerts = aws.subscribe_queue(&topic).await;
        let secret = unique(name);
        aws.create_rotated_secret(&secret, &value.to_string(), strategy).await.expect("the secret to rotate");
        let scrubber = Scrubber::default();
        let rotator = Rotator::new(
            SecretsManagerVersions::new(aws.secrets.clone()).with_scrubber(scrubber.clone()),
            SnsAlertPublisher::new(aws.sns.clone(), topic),
            ops_shared::http::client(http_timeout).expect("HTTP client"),
            config,
        );
        let function = Function::new(secret_rotation::FUNCTION_NAME, rotator, scrubber.clone());
        RotationUnderTest { aws, alerts, secret, scrubber, function }
    }

    pub async fn step(&self, step: &str, token: &str) -> Result<StepReport, Diagnostic> {
        let event = json!({"Step": step, "SecretId": self.secret, "ClientRequestToken": token});
        self.function.invoke(LambdaEvent::new(event, Context::default())).await
    }

    /// One rotation, the function dying after `crash_after` steps and the rotation replayed.
    pub async fn rotate(&self, crash_after: usize) -> String {
        self.aws
            .rotate_with(&self.secret, crash_after, |step, token| async move { self.step(step, &token).await })
            .await
    }

    /// The secret's JSON value at `stage`.
    pub async fn stage<T: DeserializeOwned>(&self, stage: &str) -> T {
        let value = read_stage(&self.aws.secrets, &self.secret, stage).await.expect("read the stage");
        serde_json::from_str(&value.value).expect("JSON secret")
    }
}
