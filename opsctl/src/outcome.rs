//! How a command ends: what it prints on stdout and the verdict its exit code tells. The exit
//! code is decided here and nowhere else ([`crate::error::finish`] prints an error and maps it).

use std::process::ExitCode;

use serde::Serialize;

/// A command's verdict, as its exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: all is as the runbook says (or was made so).
    Ok,
    /// Exit 1: a problem was found (a check failed, something differs from the runbook).
    Problem,
    /// Exit 2: a usage error, or something could not be reached or read.
    Failed,
}

impl Verdict {
    /// `Problem` when `found`, else `Ok`.
    pub const fn problem_if(found: bool) -> Verdict {
        if found { Verdict::Problem } else { Verdict::Ok }
    }

    /// The process exit code of the verdict.
    pub const fn code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Problem => 1,
            Verdict::Failed => 2,
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// What a command that ran prints, and its verdict.
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    output: Output,
}

#[derive(Debug)]
enum Output {
    Text(String),
    Json(Result<String, serde_json::Error>),
}

impl Outcome {
    /// `value` as JSON with `--json`, else `text` as it is.
    pub fn shown(json: bool, value: &impl Serialize, text: String, verdict: Verdict) -> Outcome {
        let output = if json { Output::Json(serde_json::to_string_pretty(value)) } else { Output::Text(text) };
        Outcome { verdict, output }
    }

    /// `text`, with no JSON form.
    pub fn text(text: String, verdict: Verdict) -> Outcome {
        Outcome { verdict, output: Output::Text(text) }
    }

    /// Prints the output on stdout (a JSON value that cannot be written is said on stderr).
    pub fn print(&self) {
        match &self.output {
            Output::Text(text) => print!("{text}"),
            Output::Json(Ok(json)) => println!("{json}"),
            Output::Json(Err(err)) => eprintln!("opsctl: cannot write JSON: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verdict_has_its_exit_code() {
        assert_eq!([Verdict::Ok, Verdict::Problem, Verdict::Failed].map(Verdict::code), [0, 1, 2]);
        assert_eq!((Verdict::problem_if(true), Verdict::problem_if(false)), (Verdict::Problem, Verdict::Ok));
    }
}
