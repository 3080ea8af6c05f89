//! What an event says changed, and the pending changes the control loop collects: the patches
//! events carry (applied at once), and a set of app ids to read one by one to confirm them, or
//! "everything" (a reconnect, an event naming no app, too many apps at once). The reads decide
//! where they disagree with a patch.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::Deserialize;
use tokio::sync::Notify;

use super::patch::EventPatch;

/// Beyond this many changed apps one full `/v2/apps` is cheaper than fetching them one by one.
pub const MAX_APPS_PER_REFRESH: usize = 16;

/// Patches held at most between two turns of the control loop; a storm past it is read whole.
pub const MAX_PENDING_PATCHES: usize = 4096;

/// The patches to apply and the apps to read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pending {
    pub all: bool,
    pub apps: BTreeSet<String>,
    /// In the order the events came.
    pub patches: Vec<EventPatch>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        !self.all && self.apps.is_empty() && self.patches.is_empty()
    }

    /// Adds what was pending later.
    pub fn merge(&mut self, mut later: Pending) {
        self.all |= later.all;
        self.apps.append(&mut later.apps);
        self.patches.append(&mut later.patches);
        self.cap_apps();
    }

    /// Past [`MAX_APPS_PER_REFRESH`] apps one full read is cheaper than reading them one by
    /// one: then everything is read (and `all` supersedes the app list).
    fn cap_apps(&mut self) {
        if self.apps.len() > MAX_APPS_PER_REFRESH {
            self.all = true;
        }
        if self.all {
            self.apps.clear();
        }
    }
}

/// Shared by the stream follower (which adds) and the control loop (which takes and waits).
#[derive(Debug, Default)]
pub struct ChangeSignal {
    pending: Mutex<Pending>,
    notify: Notify,
}

impl ChangeSignal {
    /// Everything must be fetched again.
    pub fn all(&self) {
        self.update(|p| p.all = true);
    }

    /// What one event names, and what it carries.
    pub fn event(&self, kind: &str, data: &str) {
        self.event_about(kind, data, affected_apps(kind, data).as_deref());
    }

    /// [`ChangeSignal::event`] with the apps the event names already read from it
    /// ([`affected_apps`]), so that the stream follower reads them once for the status too.
    pub fn event_about(&self, kind: &str, data: &str, apps: Option<&[String]>) {
        let patch = super::patch::patch_of(kind, data);
        match apps {
            Some(apps) if !apps.is_empty() => self.update(|p| {
                p.apps.extend(apps.iter().cloned());
                p.cap_apps();
                if let Some(patch) = patch {
                    if p.patches.len() < MAX_PENDING_PATCHES {
                        p.patches.push(patch);
                    } else {
                        p.all = true;
                    }
                }
            }),
            _ => self.all(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Pending)) {
        if let Ok(mut pending) = self.pending.lock() {
            change(&mut pending);
        }
        self.notify.notify_one();
    }

    /// Waits until something is pending (returns at once if something already is).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Takes what is pending; `all` supersedes the app list.
    pub fn take(&self) -> Pending {
        let mut taken = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or(Pending {
                all: true,
                ..Pending::default()
            });
        if taken.all {
            taken.apps.clear();
        }
        taken
    }
}

/// The app ids an event is about; `None` when it cannot say (then everything is refetched).
pub fn affected_apps(kind: &str, data: &str) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        app_id: Option<String>,
        run_spec_id: Option<String>,
        app_definition: Option<Definition>,
        plan: Option<Plan>,
    }
    #[derive(Deserialize)]
    struct Definition {
        id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Plan {
        #[serde(default)]
        steps: Vec<Step>,
    }
    #[derive(Deserialize)]
    struct Step {
        #[serde(default)]
        actions: Vec<Action>,
    }
    #[derive(Deserialize)]
    struct Action {
        app: Option<String>,
        pod: Option<String>,
    }
    let fields: Fields = serde_json::from_str(data).ok()?;
    let one = |id: Option<String>| id.filter(|i| i.starts_with('/')).map(|i| vec![i]);
    match kind {
        "api_post_event" => one(fields.app_definition.and_then(|d| d.id)),
        "status_update_event"
        | "health_status_changed_event"
        | "app_terminated_event"
        | "failed_health_check_event"
        | "unhealthy_instance_kill_event" => one(fields.app_id),
        "instance_changed_event" | "instance_health_changed_event" => one(fields.run_spec_id),
        kind if kind.starts_with("deployment_") => {
            let actions = fields.plan?.steps.into_iter().flat_map(|s| s.actions);
            let mut apps = Vec::new();
            for action in actions {
                match (action.app, action.pod) {
                    (Some(app), _) => apps.push(app),
                    // Pods are not routed, but say nothing about apps either.
                    (None, Some(_)) => {}
                    (None, None) => return None,
                }
            }
            (!apps.is_empty()).then_some(apps)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_apps() {
        let status = r#"{"appId":"/web","taskId":"web.1","taskStatus":"TASK_RUNNING"}"#;
        assert_eq!(
            affected_apps("status_update_event", status),
            Some(vec!["/web".into()])
        );
        let post = r#"{"uri":"/v2/apps/web","appDefinition":{"id":"/shop/web"}}"#;
        assert_eq!(
            affected_apps("api_post_event", post),
            Some(vec!["/shop/web".into()])
        );
        let instance =
            r#"{"instanceId":"web.instance-1","runSpecId":"/web","condition":"Running"}"#;
        assert_eq!(
            affected_apps("instance_changed_event", instance),
            Some(vec!["/web".into()])
        );
        let deployment = r#"{"id":"d1","plan":{"id":"d1","steps":[{"actions":[{"action":"ScaleApplication","app":"/a"},{"action":"StartPod","pod":"/p"}]},{"actions":[{"action":"StartApplication","app":"/b"}]}]}}"#;
        assert_eq!(
            affected_apps("deployment_success", deployment),
            Some(vec!["/a".into(), "/b".into()])
        );
        // Nothing usable: everything is refetched.
        assert_eq!(
            affected_apps("deployment_success", r#"{"id":"d1","plan":{"steps":[]}}"#),
            None
        );
        assert_eq!(affected_apps("status_update_event", "not json"), None);
        assert_eq!(
            affected_apps("status_update_event", r#"{"appId":"relative"}"#),
            None
        );
        assert_eq!(
            affected_apps("group_change_success", r#"{"groupId":"/g"}"#),
            None
        );
    }

    #[test]
    fn many_apps_or_an_unclear_event_mean_everything() {
        let signal = ChangeSignal::default();
        signal.event("app_terminated_event", r#"{"appId":"/a"}"#);
        signal.event("app_terminated_event", r#"{"appId":"/b"}"#);
        let taken = signal.take();
        assert!(!taken.all);
        assert_eq!(taken.apps.len(), 2);
        assert!(signal.take().is_empty());
        for i in 0..=MAX_APPS_PER_REFRESH {
            signal.event("app_terminated_event", &format!(r#"{{"appId":"/a{i}"}}"#));
        }
        assert!(signal.take().all);
        signal.event("app_terminated_event", r#"{"appId":"/a"}"#);
        signal.event("mystery_event", "{}");
        let taken = signal.take();
        assert!(taken.all && taken.apps.is_empty());
    }
}
