//! ECS `RunTask` for the engine task (Amazon ECS API Reference, "RunTask": a JSON 1.1 POST
//! with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.RunTask`, signed for `ecs`; the
//! answer's `tasks` and `failures`, errors as `{"__type", "message"}`).

use aws_config::SdkConfig;
use serde::Deserialize;
use serde_json::json;

use crate::adapters::http::Repeat;
use crate::adapters::signed_api::SignedApi;
use crate::domain::alert::cut_at_char;
use crate::domain::handoff::{Handoff, HandoffConfig, TaskConfig, TaskError, TaskLauncher};
use crate::runtime::config::ConfigError;
use crate::runtime::lambda::Startup;

const TARGET: &str = "AmazonEC2ContainerServiceV20141113.RunTask";
const JSON: &str = "application/x-amz-json-1.1";

/// Starts the engine task on Fargate as `task` describes.
#[derive(Clone, Debug)]
pub struct EcsTasks {
    api: SignedApi,
    task: TaskConfig,
}

impl EcsTasks {
    pub fn new(sdk: &SdkConfig, http: reqwest::Client, task: TaskConfig) -> EcsTasks {
        EcsTasks { api: SignedApi::new(sdk, http, "ecs", "ecs"), task }
    }

    /// The `RunTask` request for `command`.
    pub fn request(&self, command: &[String], client_token: &str, started_by: &str) -> serde_json::Value {
        let task = &self.task;
        json!({
            "cluster": task.cluster,
            "taskDefinition": task.task_definition,
            "launchType": "FARGATE",
            "count": 1,
            // Up to 64 characters; the same token within an hour starts no second task.
            "clientToken": cut_at_char(client_token, 64),
            "startedBy": cut_at_char(started_by, 36),
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": task.subnets,
                "securityGroups": task.security_groups,
                "assignPublicIp": if task.assign_public_ip { "ENABLED" } else { "DISABLED" },
            }},
            "overrides": {"containerOverrides": [{"name": task.container, "command": command}]},
        })
    }
}

/// The stack's engine task and when to use it, from the function's configuration.
pub fn handoff(startup: &Startup, http: reqwest::Client) -> Result<Handoff<EcsTasks>, ConfigError> {
    let config = HandoffConfig::from_env(&startup.env)?;
    let launcher = config.task.clone().map(|task| EcsTasks::new(&startup.sdk, http, task));
    Ok(Handoff { config, launcher })
}

#[derive(Deserialize)]
struct RunTaskAnswer {
    #[serde(default)]
    tasks: Vec<StartedTask>,
    #[serde(default)]
    failures: Vec<Failure>,
}

#[derive(Deserialize)]
struct StartedTask {
    #[serde(rename = "taskArn")]
    task_arn: String,
}

#[derive(Deserialize)]
struct Failure {
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(alias = "Message", default)]
    message: String,
}

/// The task's ARN from a `RunTask` answer, or why none started.
fn started(status: u16, body: &str) -> Result<String, TaskError> {
    if !(200..300).contains(&status) {
        let message = match serde_json::from_str::<ErrorAnswer>(body) {
            Ok(error) => {
                let kind = error.kind.rsplit('#').next().unwrap_or_default().to_owned();
                format!("{kind}: {}", error.message)
            }
            Err(_) => cut_at_char(body.trim(), 300).to_owned(),
        };
        return Err(TaskError::Refused { status, message });
    }
    let answer: RunTaskAnswer = serde_json::from_str(body).map_err(|e| TaskError::Unreadable(e.to_string()))?;
    if let Some(task) = answer.tasks.into_iter().next() {
        return Ok(task.task_arn);
    }
    let failures: Vec<String> = answer
        .failures
        .iter()
        .map(|f| {
            let part = |p: &Option<String>| p.clone().unwrap_or_default();
            format!("{} {} {}", part(&f.arn), part(&f.reason), part(&f.detail)).trim().to_owned()
        })
        .collect();
    Err(TaskError::NotStarted(if failures.is_empty() {
        "no task and no failure in the answer".to_owned()
    } else {
        failures.join("; ")
    }))
}

impl TaskLauncher for EcsTasks {
    async fn start(&self, command: &[String], client_token: &str, started_by: &str) -> Result<String, TaskError> {
        let identity = self.api.identity().await.map_err(|e| TaskError::Call(e.to_string()))?;
        let body = self.request(command, client_token, started_by).to_string();
        // The client token makes a repeat the same start, so a lost answer may be asked again.
        let (status, text) = self
            .api
            .post(&identity, &[("content-type", JSON), ("x-amz-target", TARGET)], body, Repeat::Idempotent)
            .await
            .map_err(|e| TaskError::Call(e.to_string()))?;
        started(status, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moto ignores `clientToken`: what makes a repeated start the same start is checked here.
    #[test]
    fn the_request_carries_the_invocations_token_and_the_tasks_network() {
        let sdk = aws_config::SdkConfig::builder().build();
        let http = reqwest::Client::new();
        let task = TaskConfig {
            cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/ops".into(),
            task_definition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/ops-engine:3".into(),
            container: "engine".into(),
            subnets: vec!["subnet-1".into(), "subnet-2".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false,
        };
        let request = EcsTasks::new(&sdk, http, task).request(
            &["backup".to_owned()],
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "scheduled-backup",
        );
        assert_eq!(request["clientToken"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        assert_eq!(request["launchType"], "FARGATE");
        assert_eq!(
            request["networkConfiguration"]["awsvpcConfiguration"],
            serde_json::json!({"subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"})
        );
        assert_eq!(
            request["overrides"]["containerOverrides"],
            serde_json::json!([{"name": "engine", "command": ["backup"]}])
        );
    }

    /// Answers shaped as the API reference's examples show them.
    #[test]
    fn an_answer_gives_the_task_or_names_why_none_started() {
        let ok = r#"{"failures":[],"tasks":[{"taskArn":"arn:aws:ecs:us-east-1:012345678910:task/ops/1dc5c17a422548b0","lastStatus":"PENDING"}]}"#;
        assert_eq!(started(200, ok).expect("started"), "arn:aws:ecs:us-east-1:012345678910:task/ops/1dc5c17a422548b0");
        let failed =
            r#"{"failures":[{"arn":"arn:aws:ecs:us-east-1:012345678910:cluster/ops","reason":"MISSING"}],"tasks":[]}"#;
        assert_eq!(
            started(200, failed).unwrap_err().to_string(),
            "ECS did not start the task: arn:aws:ecs:us-east-1:012345678910:cluster/ops MISSING"
        );
        let refused =
            r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: iam:PassRole"}"#;
        assert_eq!(
            started(400, refused).unwrap_err().to_string(),
            "ECS RunTask refused: HTTP 400: AccessDeniedException: User is not authorized to perform: iam:PassRole"
        );
        assert!(matches!(started(200, "<html>").unwrap_err(), TaskError::Unreadable(_)));
    }
}
