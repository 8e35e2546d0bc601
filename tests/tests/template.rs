//! The local stack provisions what the template declares, under the same names.

use ops_testkit::names;

fn template() -> String {
    std::fs::read_to_string(ops_testkit::workspace_file("template.yaml")).expect("template.yaml")
}

/// `cineview-x` as the template writes it: `${NamePrefix}-x`.
fn templated(name: &str) -> String {
    name.replacen(names::PREFIX, "${NamePrefix}", 1).replace(names::ACCOUNT_ID, "${AWS::AccountId}")
}

#[test]
fn stack_resource_names_are_the_templates() {
    let template = template();
    let declared = [
        ("TopicName", names::ALERT_TOPIC.to_owned()),
        ("TopicName", names::OPS_TOPIC.to_owned()),
        ("TableName", names::STATE_TABLE.to_owned()),
        ("BucketName", names::backup_bucket()),
        ("Name", names::DATABASE_SECRET.to_owned()),
        ("Name", names::STAGING_DATABASE_SECRET.to_owned()),
        ("Name", names::SENTRY_WEBHOOK_SECRET.to_owned()),
        ("Name", format!("{}-supabase-service-role", names::PREFIX)),
        ("Name", format!("{}-ai-engine-api", names::PREFIX)),
        ("Name", format!("{}-gemini-api", names::PREFIX)),
        ("Name", format!("{}-ai-engine-admin-token", names::PREFIX)),
        ("Name", format!("{}-supabase-access-token", names::PREFIX)),
        ("Name", format!("{}-google-service-account", names::PREFIX)),
    ];
    for (property, name) in declared {
        let line = format!("{property}: !Sub {}", templated(&name));
        assert!(template.contains(&line), "template.yaml does not declare {line:?}");
    }
    assert!(template.contains("Default: cineview"), "NamePrefix default");
}

#[test]
fn every_function_is_declared_with_its_binary() {
    let template = template();
    for binary in ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"] {
        assert!(template.contains(&format!("Binary: {binary}\n")), "{binary} is not built by the template");
        assert!(template.contains(&format!("FunctionName: !Sub ${{NamePrefix}}-{binary}\n")));
    }
}

#[test]
fn the_backup_functions_get_the_tools_layer_the_template_builds_unless_an_arn_overrides_it() {
    let template = template();
    for line in [
        "  PgToolsLayer:\n    Type: AWS::Serverless::LayerVersion\n    Condition: BuildsPgToolsLayer\n",
        "      BuildMethod: makefile\n      BuildArchitecture: arm64\n",
        "      ContentUri: layers/pg-tools/\n",
        "  BuildsPgToolsLayer: !Equals [!Ref PgToolsLayerArn, \"\"]\n",
    ] {
        assert!(template.contains(line), "template.yaml lacks {line:?}");
    }
    let layers = "      Layers: [!If [HasPgToolsLayer, !Ref PgToolsLayerArn, !Ref PgToolsLayer]]\n";
    assert_eq!(template.matches(layers).count(), 2, "scheduled-backup and restore-verifier get the layer");
    let tools_dir = format!("          PG_TOOLS_DIR: {}\n", ops_shared::pgtools::DEFAULT_DIR);
    assert_eq!(template.matches(&tools_dir).count(), 2, "both read the tools where the layer mounts them");
    let makefile = std::fs::read_to_string(ops_testkit::workspace_file("layers/pg-tools/Makefile")).expect("Makefile");
    assert!(
        makefile
            .contains("build-PgToolsLayer:\n\tcd \"$(WORKSPACE)\" && cargo xtask pg-layer --into \"$(ARTIFACTS_DIR)\"")
    );
}
