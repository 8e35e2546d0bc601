//! Long work (a backup, a download, a restore) shown as it goes, on stderr so that `--json`
//! output stays clean: a spinner with the elapsed time on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// Progress on stderr: a spinner when it is a terminal, lines when it is not.
    pub fn stderr() -> Progress {
        Progress { terminal: std::io::stderr().is_terminal(), quiet: false }
    }

    /// No progress at all (library callers and tests).
    pub fn quiet() -> Progress {
        Progress { terminal: false, quiet: true }
    }

    /// Runs `work`, showing `what` while it runs and how long it took.
    pub async fn phase<T>(&self, what: &str, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        if self.quiet {
            return work.await;
        }
        if !self.terminal {
            eprintln!("opsctl: {what}…");
            let output = work.await;
            eprintln!("opsctl: {what}: {:.1} s", started.elapsed().as_secs_f64());
            return output;
        }
        let spinner = ProgressBar::new_spinner().with_message(what.to_owned());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            spinner.set_style(style);
        }
        spinner.enable_steady_tick(Duration::from_millis(120));
        let output = work.await;
        spinner.finish_with_message(format!("{what}: {:.1} s", started.elapsed().as_secs_f64()));
        output
    }
}
