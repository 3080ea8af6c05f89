//! What a deployment prints: one line per step and per change of what it waits for (on
//! stdout, for logs and CI), a progress bar of the new app's healthy instances when stderr is
//! a terminal, and the `[Y/n]` questions `zdd.py` asked without `--force`.

use std::io::{BufRead, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

use super::step::{Status, Why};
use super::ZddError;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// The last status line printed: printed again only when it changes.
    last: Option<String>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1);
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} new instances ready  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress { bar, last: None }
    }

    /// A line of its own (above the bar, when there is one).
    pub fn say(&self, line: &str) {
        let print = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// The state after a look at Marathon and the balancers, and what is awaited.
    pub fn status(&mut self, status: &Status, waiting: Option<&Why>) {
        let line = match waiting {
            Some(why) => format!("{status} — waiting: {why}"),
            None => status.to_string(),
        };
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(status.goal.max(1)));
            bar.set_position(status.new_ready as u64);
            bar.set_message(waiting.map(|w| w.to_string()).unwrap_or_default());
        }
        if self.last.as_deref() != Some(line.as_str()) {
            self.say(&line);
            self.last = Some(line);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// `zdd.py`'s `query_yes_no`: yes by default; no answer (stdin closed) is a no.
    pub async fn confirm(&self, question: &str) -> Result<(), ZddError> {
        self.say(&format!("{question} [Y/n]"));
        let answer = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map(|n| (n, line))
        })
        .await;
        match answer {
            Ok(Ok((n, line))) if n > 0 => match line.trim().to_ascii_lowercase().as_str() {
                "" | "y" | "ye" | "yes" => Ok(()),
                _ => Err(ZddError::Declined(format!("declined: {question}"))),
            },
            _ => Err(ZddError::Declined(
                "no answer on stdin: pass --force (-f) to deploy without questions".to_owned(),
            )),
        }
    }
}
