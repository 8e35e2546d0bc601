//! The engine task: the backup and the restore test exactly as `scheduled-backup` and
//! `restore-verifier` run them (same engines, same environment, same manifest, report,
//! metrics and alerts), in a container on ECS Fargate, without Lambda's 15 minutes. The
//! functions start it with `ecs:RunTask` when they would not finish.
//!
//! `engine-task backup [--label LABEL]` and `engine-task restore-test [--backup latest|random|KEY]`.

use ops_shared::backup::valid_label;
use ops_shared::restore::Selection;

/// What the task was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Backup { label: Option<String> },
    RestoreTest { selection: Selection },
}

pub const USAGE: &str =
    "usage: engine-task backup [--label LABEL] | engine-task restore-test [--backup latest|random|KEY]";

/// A command line that is not one of the two.
#[derive(Debug, thiserror::Error)]
#[error("{problem}\n{USAGE}")]
pub struct UsageError {
    problem: String,
}

fn usage(problem: impl Into<String>) -> UsageError {
    UsageError { problem: problem.into() }
}

/// Parses the arguments after the program's name.
pub fn parse(args: &[String]) -> Result<Work, UsageError> {
    let (command, rest) = args.split_first().ok_or_else(|| usage("no command"))?;
    let option = |name: &str| -> Result<Option<String>, UsageError> {
        match rest {
            [] => Ok(None),
            [flag, value] if flag == name => Ok(Some(value.clone())),
            _ => Err(usage(format!("{command} takes only {name} VALUE, not {rest:?}"))),
        }
    };
    match command.as_str() {
        "backup" => {
            let label = option("--label")?;
            if let Some(label) = &label
                && !valid_label(label)
            {
                return Err(usage(format!("label {label:?} must be 1-40 letters, digits, '-' or '_'")));
            }
            Ok(Work::Backup { label })
        }
        "restore-test" => Ok(Work::RestoreTest { selection: Selection::parse(option("--backup")?.as_deref()) }),
        other => Err(usage(format!("unknown command {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_functions_commands_parse_and_anything_else_is_refused_by_name() {
        assert_eq!(parse(&args("backup")).expect("backup"), Work::Backup { label: None });
        assert_eq!(
            parse(&args("backup --label nightly")).expect("labelled"),
            Work::Backup { label: Some("nightly".into()) }
        );
        let key = "backups/app/20261203T020000Z-3f2a9c1d.dump";
        assert_eq!(
            parse(&args(&format!("restore-test --backup {key}"))).expect("key"),
            Work::RestoreTest { selection: Selection::Key(key.into()) }
        );
        assert_eq!(parse(&args("restore-test")).expect("latest"), Work::RestoreTest { selection: Selection::Latest });
        assert!(parse(&args("")).unwrap_err().to_string().contains("no command"));
        assert!(parse(&args("restore")).unwrap_err().to_string().contains("unknown command \"restore\""));
        assert!(parse(&args("backup --label a/b")).unwrap_err().to_string().contains("label"));
        assert!(parse(&args("backup --backup x")).unwrap_err().to_string().contains("--label"));
    }
}
