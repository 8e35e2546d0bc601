//! `moto_server` on a free loopback port.

use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

use crate::process::{free_port, spawn_tied, stop_child, wait_for_port};

const SERVER_WITHOUT_SIGNATURE_CHECK: &str = "import json, sys
from moto.iam.access_control import IAMPolicy, IAMRequestBase, PermissionResult
from moto.s3.models import FakeBucket
from moto.server import main
IAMRequestBase.check_signature = lambda self: None
def bucket_permission(self, action, resource):
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy.decode())
    statements = policy.get('Statement', [])
    statements = [s for s in (statements if isinstance(statements, list) else [statements]) if 'Condition' not in s]
    return IAMPolicy(json.dumps({**policy, 'Statement': statements})).is_action_permitted(action, resource)
FakeBucket.get_permission = bucket_permission
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
if not hasattr(NetworkInterface, 'private_dns_name'):
    NetworkInterface.private_dns_name = property(lambda self: 'ip-' + self.private_ip_address.replace('.', '-') + '.ec2.internal')
sys.exit(main())";

pub struct Moto {
    pub port: u16,
    child: Mutex<Option<Child>>,
}

impl Moto {
    pub fn start(log_dir: &std::path::Path) -> Result<Moto, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut command = Command::new(python());
        // moto checks SigV4 signatures only while it enforces IAM (see `crate::iam`), and then
        // over its own re-encoding of a form body (SNS), which is not what the Rust SDK signed:
        // that one check is skipped; unknown access keys and disallowed actions are still refused.
        // moto judges a bucket policy's statement with a condition it has no context for (the
        // template's `aws:SecureTransport` and `aws:PrincipalArn` ones) as a deny of every object
        // request; AWS applies it only when its condition holds, which these conditions do not
        // for the SDK's TLS requests from other principals: such statements are left out.
        // moto's RunTask in awsvpc mode describes the task's network interface by a private DNS
        // name its interfaces lack (an AttributeError, answered 500): they are given the name
        // EC2 gives (`ip-<address>.ec2.internal`, "Amazon EC2 instance hostname types").
        command.args(["-c", SERVER_WITHOUT_SIGNATURE_CHECK, "-H", "127.0.0.1", "-p", &port.to_string()]);
        // The roles SAM creates attach AWS managed policies (AWSLambdaBasicExecutionRole).
        command.env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
        let mut child = spawn_tied(command, Some(log_dir.join("moto.log"))).map_err(|e| {
            format!("cannot start moto_server ({}): {e}; run `cargo xtask demo` once to install it", python())
        })?;
        if let Err(err) = wait_for_port(port, &mut child, "moto_server", Duration::from_secs(60)) {
            let log = std::fs::read_to_string(log_dir.join("moto.log")).unwrap_or_default();
            stop_child(&mut child, libc::SIGTERM, Duration::from_secs(1));
            return Err(format!("{err}\n{log}"));
        }
        Ok(Moto { port, child: Mutex::new(Some(child)) })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(mut child) = guard.take()
        {
            stop_child(&mut child, libc::SIGTERM, Duration::from_secs(3));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Python interpreter that has moto installed (`PYTHON` overrides).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}
