//! Backups survive a mistake or an intruder for the retention period: no role of the stack can
//! delete one or loosen the bucket's versioning, lifecycle or policy, and a backup deleted or
//! overwritten anyway stays restorable as a noncurrent version for 30 days. moto enforces
//! identity policies only, so the bucket policy is judged by `ops_testkit::iam_policy`, which
//! follows IAM's documented evaluation logic, against the template as CloudFormation creates it.

use ops_testkit::iam_policy::{Decision, Request, evaluate};
use ops_testkit::names::ACCOUNT_ID;
use serde_json::{Value, json};

fn created() -> Value {
    ops_testkit::iam::resolved_template(&[]).unwrap_or_else(|e| panic!("{e}"))
}

fn of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t String, &'t Value)> {
    let resources = template["Resources"].as_object().expect("Resources");
    resources.iter().filter(|(_, r)| r["Type"] == kind).collect()
}

fn bucket(template: &Value) -> String {
    template["Resources"]["BackupBucket"]["Properties"]["BucketName"].as_str().expect("bucket name").to_owned()
}

#[test]
fn no_role_of_the_stack_can_delete_a_backup_or_loosen_its_retention() {
    let t = created();
    let policy = &t["Resources"]["BackupBucketPolicy"]["Properties"]["PolicyDocument"];
    let bucket = format!("arn:aws:s3:::{}", bucket(&t));
    let dump = format!("{bucket}/backups/postgres/2026/12/02/20261202T020000Z-1a2b3c4d.dump");
    let roles = ops_testkit::iam::template_roles().unwrap_or_else(|e| panic!("{e}"));
    let role_ids: Vec<&String> = of_type(&t, "AWS::IAM::Role").into_iter().map(|(id, _)| id).collect();
    assert_eq!(role_ids.len(), roles.len(), "every role of the stack is a function's");
    // Whatever a role's own policies grant, as a role taken over or granted too much would have.
    let everything = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    for role in roles.values() {
        let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{}", role.role);
        for (action, resource) in [
            ("s3:DeleteObject", &dump),
            ("s3:DeleteObjectVersion", &dump),
            ("s3:PutObjectRetention", &dump),
            ("s3:BypassGovernanceRetention", &dump),
            ("s3:PutLifecycleConfiguration", &bucket),
            ("s3:PutBucketVersioning", &bucket),
            ("s3:PutBucketPolicy", &bucket),
            ("s3:DeleteBucketPolicy", &bucket),
            ("s3:PutBucketObjectLockConfiguration", &bucket),
        ] {
            let decision = evaluate(&Request::new(&arn, action, resource), &[&everything], Some(policy));
            assert_eq!(decision, Ok(Decision::ExplicitlyDenied), "{} may {action} {resource}", role.function);
        }
    }

    // What the functions must do still works under their own policies.
    let own = |function: &str| -> Vec<Value> { roles[function].policies.iter().map(|p| p.document.clone()).collect() };
    let allowed = |function: &str, action: &str, resource: &str| {
        let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{}", roles[function].role);
        let documents = own(function);
        let identity: Vec<&Value> = documents.iter().collect();
        evaluate(&Request::new(&arn, action, resource), &identity, Some(policy))
    };
    assert_eq!(allowed("scheduled-backup", "s3:PutObject", &dump), Ok(Decision::Allowed));
    assert_eq!(allowed("scheduled-backup", "s3:AbortMultipartUpload", &dump), Ok(Decision::Allowed));
    assert_eq!(allowed("restore-verifier", "s3:GetObject", &dump), Ok(Decision::Allowed));
    let report = format!("{bucket}/reports/restore-tests/2026/12/x.json");
    assert_eq!(allowed("restore-verifier", "s3:PutObject", &report), Ok(Decision::Allowed));

    // An operator outside the stack keeps the bucket's keys (the lifecycle is theirs to change).
    let operator = format!("arn:aws:iam::{ACCOUNT_ID}:role/ops-admin");
    for (action, resource) in [("s3:DeleteObject", &dump), ("s3:PutLifecycleConfiguration", &bucket)] {
        let decision = evaluate(&Request::new(&operator, action, resource), &[&everything], Some(policy));
        assert_eq!(decision, Ok(Decision::Allowed), "{action}");
    }
    // And nobody reaches the bucket without TLS.
    let mut plain = Request::new(&operator, "s3:GetObject", &dump);
    plain.context.insert("aws:SecureTransport".into(), "false".into());
    assert_eq!(evaluate(&plain, &[&everything], Some(policy)), Ok(Decision::ExplicitlyDenied));
}

#[test]
fn a_deleted_or_overwritten_backup_stays_restorable_for_30_days() {
    let t = created();
    let properties = &t["Resources"]["BackupBucket"]["Properties"];
    assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
    let rules = properties["LifecycleConfiguration"]["Rules"].as_array().expect("rules");
    let backups = rules.iter().find(|r| r["Prefix"] == "backups/").expect("a rule for backups/");
    assert_eq!(backups["ExpirationInDays"], 30);
    let noncurrent = backups["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64().expect("noncurrent days");
    assert!(noncurrent >= 30, "a deleted backup vanishes after {noncurrent} days");
    // Object Lock stays an option.
    let locked = ops_testkit::iam::resolved_template(&[("BackupObjectLock", "true")]).unwrap_or_else(|e| panic!("{e}"));
    let lock = &locked["Resources"]["BackupBucket"]["Properties"]["ObjectLockConfiguration"];
    assert_eq!(lock["Rule"]["DefaultRetention"], json!({"Mode": "GOVERNANCE", "Days": 30}));
}
