//! The mass-removal guard (reliability matrix E8). Marathon answering with no apps at all right
//! after a list with apps is more often a Marathon restarting or losing its state than an
//! operator deleting everything (Marathon-LB wiped every backend on it). Such a list is held:
//! the last table keeps serving until a full read at least `confirm` later still lists no apps;
//! that read applies it, so an operator can still empty the table. A list with apps in between
//! ends the hold. Only Marathon sources are guarded: an apps file is the operator's own edit.

use std::time::Duration;

use tokio::time::Instant;

/// What to do with a list just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Build and serve it.
    Apply,
    /// Keep serving the last table; `first` when this read started the hold.
    Hold { first: bool },
}

#[derive(Debug)]
pub(super) struct EmptyListGuard {
    /// `None`: no guard (a file source).
    confirm: Option<Duration>,
    /// When the hold started.
    held_since: Option<Instant>,
    /// When to read again to confirm the hold (taken once by the control loop).
    confirm_at: Option<Instant>,
}

impl EmptyListGuard {
    pub(super) fn new(confirm: Option<Duration>) -> EmptyListGuard {
        EmptyListGuard {
            confirm,
            held_since: None,
            confirm_at: None,
        }
    }

    /// Judges a list of `apps` apps read now, while a table from `serving_apps` apps is served.
    pub(super) fn judge(&mut self, apps: usize, serving_apps: usize) -> Verdict {
        let Some(confirm) = self.confirm else {
            return Verdict::Apply;
        };
        if apps > 0 || serving_apps == 0 {
            self.release();
            return Verdict::Apply;
        }
        let now = Instant::now();
        match self.held_since {
            None => {
                self.held_since = Some(now);
                self.confirm_at = Some(now + confirm);
                Verdict::Hold { first: true }
            }
            Some(since) if now.duration_since(since) >= confirm => {
                self.release();
                Verdict::Apply
            }
            Some(_) => Verdict::Hold { first: false },
        }
    }

    /// The list being served was read again: nothing is held any more.
    pub(super) fn release(&mut self) {
        self.held_since = None;
        self.confirm_at = None;
    }

    pub(super) fn is_holding(&self) -> bool {
        self.held_since.is_some()
    }

    pub(super) fn confirm_after(&self) -> Duration {
        self.confirm.unwrap_or_default()
    }

    /// When the confirming read is due, once: the loop reads then, and a failed read is
    /// retried by the usual back-off rather than by this timer.
    pub(super) fn confirm_at(&self) -> Option<Instant> {
        self.confirm_at
    }

    pub(super) fn take_confirm(&mut self) {
        self.confirm_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIRM: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn an_empty_list_is_applied_only_by_a_read_after_the_interval() {
        let mut guard = EmptyListGuard::new(Some(CONFIRM));
        assert_eq!(guard.judge(0, 3), Verdict::Hold { first: true });
        assert_eq!(guard.confirm_at(), Some(Instant::now() + CONFIRM));
        tokio::time::sleep(CONFIRM / 2).await;
        assert_eq!(guard.judge(0, 3), Verdict::Hold { first: false });
        tokio::time::sleep(CONFIRM / 2).await;
        assert_eq!(guard.judge(0, 3), Verdict::Apply);
        assert!(!guard.is_holding());
        assert_eq!(
            guard.judge(0, 0),
            Verdict::Apply,
            "nothing served: nothing to guard"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_with_apps_ends_the_hold() {
        let mut guard = EmptyListGuard::new(Some(CONFIRM));
        assert_eq!(guard.judge(0, 3), Verdict::Hold { first: true });
        assert_eq!(guard.judge(3, 3), Verdict::Apply);
        assert_eq!(guard.confirm_at(), None);
        tokio::time::sleep(CONFIRM).await;
        assert_eq!(
            guard.judge(0, 3),
            Verdict::Hold { first: true },
            "a new hold"
        );
    }

    #[test]
    fn a_file_source_is_not_guarded() {
        let mut guard = EmptyListGuard::new(None);
        assert_eq!(guard.judge(0, 3), Verdict::Apply);
    }
}
