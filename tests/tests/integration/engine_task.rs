//! The engine task as the template declares it, resolved as CloudFormation would create it:
//! only with an image and subnets; arm64 on Fargate; the engines' settings; and the grants
//! to start it. moto does not check `iam:PassRole`, so that grant is proven here, on the
//! translated template.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::template::{of_type, resolved};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cineview-engine:1";

fn with_task() -> Value {
    resolved(&[("TaskImageUri", IMAGE), ("TaskSubnets", "subnet-a,subnet-b")])
}

/// Every statement of every role, as `(role, statement)`.
fn statements(template: &Value) -> Vec<(String, Value)> {
    of_type(template, "AWS::IAM::Role")
        .into_iter()
        .flat_map(|(name, role)| {
            let policies = role["Properties"]["Policies"].as_array().cloned().unwrap_or_default();
            policies.into_iter().flat_map(move |policy| {
                let statements = policy["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default();
                statements.into_iter().map(move |s| (name.clone(), s))
            })
        })
        .collect()
}

fn granting(template: &Value, action: &str) -> Vec<(String, Value)> {
    statements(template)
        .into_iter()
        .filter(|(_, s)| s["Action"] == action || s["Action"].as_array().is_some_and(|a| a.contains(&json!(action))))
        .collect()
}

#[test]
fn only_the_backup_and_restore_test_may_start_the_task_and_pass_its_roles_to_ecs_tasks() {
    let t = with_task();
    let arn = |kind: &str, name: &str| format!("arn:aws:{kind}:us-east-1:123456789012:{name}");
    let cluster = arn("ecs", "cluster/cineview-engine");
    let definition = arn("ecs", "task-definition/cineview-engine:*");
    let roles =
        ["arn:aws:iam::123456789012:role/EngineTaskRole", "arn:aws:iam::123456789012:role/EngineTaskExecutionRole"];
    let run_task = granting(&t, "ecs:RunTask");
    let pass_role = granting(&t, "iam:PassRole");
    let holders = |grants: &[(String, Value)]| grants.iter().map(|(role, _)| role.clone()).collect::<Vec<_>>();
    let functions = ["RestoreVerifierFunctionRole", "ScheduledBackupFunctionRole"];
    assert_eq!(holders(&run_task), functions);
    assert_eq!(holders(&pass_role), functions);
    for (role, statement) in &run_task {
        assert_eq!(statement["Resource"], definition.as_str(), "{role}");
        assert_eq!(statement["Condition"], json!({"ArnEquals": {"ecs:cluster": cluster}}), "{role}");
    }
    for (role, statement) in &pass_role {
        assert_eq!(statement["Resource"], json!(roles), "{role}: the task's two roles, nothing else");
        assert_eq!(
            statement["Condition"],
            json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
            "{role}: to ECS tasks only"
        );
    }
    let definition = &t["Resources"]["EngineTaskDefinition"]["Properties"];
    assert_eq!(definition["TaskRoleArn"], roles[0]);
    assert_eq!(definition["ExecutionRoleArn"], roles[1]);
    for function in ["ScheduledBackupFunction", "RestoreVerifierFunction"] {
        let env = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(env["TASK_CLUSTER_ARN"], cluster.as_str(), "{function}");
        assert_eq!(env["TASK_DEFINITION_ARN"], arn("ecs", "task-definition/cineview-engine:*").as_str());
        assert_eq!(env["TASK_SUBNETS"], "subnet-a,subnet-b");
        assert!(env.get("TASK_SECURITY_GROUPS").is_none(), "none given: the VPC's default");
    }

    let without = resolved(&[]);
    assert!(
        of_type(&without, "AWS::ECS::TaskDefinition").is_empty() && of_type(&without, "AWS::ECS::Cluster").is_empty()
    );
    assert!(granting(&without, "ecs:RunTask").is_empty() && granting(&without, "iam:PassRole").is_empty());
    let env = &without["Resources"]["ScheduledBackupFunction"]["Properties"]["Environment"]["Variables"];
    assert!(env.get("TASK_DEFINITION_ARN").is_none(), "{env}");
}

#[test]
fn the_task_runs_the_image_on_arm64_fargate_with_the_functions_settings_and_its_logs_kept() {
    let t = with_task();
    let definition = &t["Resources"]["EngineTaskDefinition"]["Properties"];
    assert_eq!(definition["RequiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(definition["RuntimePlatform"]["CpuArchitecture"], "ARM64");
    assert_eq!(definition["NetworkMode"], "awsvpc");
    let container = &definition["ContainerDefinitions"][0];
    assert_eq!((&container["Name"], &container["Image"]), (&json!("engine"), &json!(IMAGE)));
    let log = &container["LogConfiguration"]["Options"];
    assert_eq!(log["awslogs-group"], "/ecs/cineview-engine-task");
    let group = &t["Resources"]["EngineTaskLogGroup"]["Properties"];
    assert_eq!((&group["LogGroupName"], &group["RetentionInDays"]), (&json!("/ecs/cineview-engine-task"), &json!(90)));
    // The read-only root: only /tmp (the restore test's download) is writable.
    assert_eq!(container["ReadonlyRootFilesystem"], true);
    assert_eq!(container["MountPoints"][0]["ContainerPath"], "/tmp");

    // The engines read the same variables in the task as in their functions, with the same values.
    let task_env: BTreeMap<String, Value> = container["Environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|pair| (pair["Name"].as_str().expect("name").to_owned(), pair["Value"].clone()))
        .collect();
    for function in ["ScheduledBackupFunction", "RestoreVerifierFunction"] {
        let env = t["Resources"][function]["Properties"]["Environment"]["Variables"].as_object().expect("env");
        for (name, value) in env {
            if name.starts_with("TASK_") || name == "BACKUP_RUNTIME" {
                continue;
            }
            assert_eq!(task_env.get(name), Some(value), "{function}'s {name} in the task");
        }
    }
}
