//! The engine task's cluster and task definition in the local AWS stand-in, and what it was
//! asked to run: ECS's JSON 1.1 API (Amazon ECS API Reference: CreateCluster,
//! RegisterTaskDefinition, DescribeTasks), signed as the functions sign RunTask.

use aws_config::SdkConfig;
use ops_shared::handoff::TaskConfig;
use ops_shared::http::Repeat;
use ops_shared::signed_api::SignedApi;
use serde_json::{Value, json};

/// A cluster and a Fargate task definition of the engine, as the template declares them.
pub struct EngineTask {
    api: SignedApi,
    pub config: TaskConfig,
}

impl EngineTask {
    /// Creates the cluster `name` and registers the task definition `name` in it.
    pub async fn create(sdk: &SdkConfig, name: &str) -> Result<EngineTask, String> {
        let http = ops_shared::http::client(std::time::Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let subnet = subnet(sdk, http.clone()).await?;
        let api = SignedApi::new(sdk, http, "ecs", "ecs");
        let cluster = call(&api, "CreateCluster", json!({"clusterName": name})).await?;
        let definition = call(
            &api,
            "RegisterTaskDefinition",
            json!({
                "family": name,
                "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc",
                "cpu": "2048",
                "memory": "4096",
                "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
                // A container's own memory, which AWS does not need beside the task's, moto does.
                "containerDefinitions": [{"name": "engine", "image": "engine-task:test", "essential": true, "memory": 4096}],
            }),
        )
        .await?;
        let text = |v: &Value, path: &str| v.pointer(path).and_then(Value::as_str).map(str::to_owned);
        let config = TaskConfig {
            cluster: text(&cluster, "/cluster/clusterArn").ok_or(format!("no cluster ARN in {cluster}"))?,
            task_definition: text(&definition, "/taskDefinition/taskDefinitionArn")
                .ok_or(format!("no task definition ARN in {definition}"))?,
            container: "engine".to_owned(),
            subnets: vec![subnet],
            security_groups: vec![],
            assign_public_ip: true,
        };
        Ok(EngineTask { api, config })
    }

    /// The tasks of the cluster as ECS describes them.
    pub async fn tasks(&self) -> Result<Vec<Value>, String> {
        let listed = call(&self.api, "ListTasks", json!({"cluster": self.config.cluster})).await?;
        let arns = listed["taskArns"].clone();
        if arns.as_array().is_none_or(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let described =
            call(&self.api, "DescribeTasks", json!({"cluster": self.config.cluster, "tasks": arns})).await?;
        Ok(described["tasks"].as_array().cloned().unwrap_or_default())
    }
}

/// A subnet of a new VPC (Amazon EC2 API Reference: CreateVpc, CreateSubnet; Query API).
async fn subnet(sdk: &SdkConfig, http: reqwest::Client) -> Result<String, String> {
    let ec2 = SignedApi::new(sdk, http, "ec2", "ec2");
    let identity = ec2.identity().await.map_err(|e| e.to_string())?;
    let query = |params: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .append_pair("Version", "2016-11-15")
            .finish()
    };
    let form = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
    let field = |xml: &str, name: &str| {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        Some(xml[start..start + xml[start..].find('<')?].to_owned())
    };
    let body = query(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]);
    let (_, vpc) = ec2.post(&identity, &form, body, Repeat::NotIdempotent).await.map_err(|e| e.to_string())?;
    let vpc_id = field(&vpc, "vpcId").ok_or(format!("EC2 CreateVpc: {vpc}"))?;
    let body = query(&[("Action", "CreateSubnet"), ("VpcId", &vpc_id), ("CidrBlock", "10.0.0.0/24")]);
    let (_, subnet) = ec2.post(&identity, &form, body, Repeat::NotIdempotent).await.map_err(|e| e.to_string())?;
    field(&subnet, "subnetId").ok_or(format!("EC2 CreateSubnet: {subnet}"))
}

async fn call(api: &SignedApi, action: &str, body: Value) -> Result<Value, String> {
    let identity = api.identity().await.map_err(|e| e.to_string())?;
    let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
    let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
    let (status, text) =
        api.post(&identity, &headers, body.to_string(), Repeat::NotIdempotent).await.map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!("ECS {action}: HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("ECS {action}: {e}: {text}"))
}
