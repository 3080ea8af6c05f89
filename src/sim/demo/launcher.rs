//! Tasks for the simulator's scheduler (`Simulator::run_tasks`): one [`DemoBackend`] per task,
//! answering with the app id and the version in the app's `env.DEMO_VERSION` (1 without). An
//! app whose `env.DEMO_HEALTHY` is `false` answers 503 on its health check's path: a version
//! that never gets healthy, for `switchyard zdd` to refuse; `env.DEMO_DELAY_MS` delays every
//! answer. A task killed through the API dies at once, requests in flight included (no
//! draining of its own: the balancer must have drained it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::DemoBackend;
use crate::sim::simulator::{Launcher, TaskSpec};

#[derive(Debug, Default)]
pub struct DemoLauncher {
    /// The running backends by port.
    running: Mutex<HashMap<u16, DemoBackend>>,
}

impl DemoLauncher {
    pub fn new() -> Arc<DemoLauncher> {
        Arc::new(DemoLauncher::default())
    }

    /// Starts a backend for a task the caller starts itself (`Simulator::start_task`), so that
    /// killing the task through the API stops it too.
    pub async fn start(
        &self,
        app_id: &str,
        definition: &Value,
    ) -> std::io::Result<std::net::SocketAddr> {
        let env = &definition["env"];
        let version = env["DEMO_VERSION"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let failing = (env["DEMO_HEALTHY"] == "false").then(|| {
            definition["healthChecks"][0]["path"]
                .as_str()
                .unwrap_or("/")
                .to_owned()
        });
        let delay = env["DEMO_DELAY_MS"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis);
        let backend = DemoBackend::start_failing(app_id, version, failing, delay).await?;
        let addr = backend.addr;
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr.port(), backend);
        Ok(addr)
    }

    /// Stops every backend still running.
    pub fn stop_all(&self) {
        let running =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        for backend in running.values() {
            backend.stop();
        }
    }
}

impl Launcher for Arc<DemoLauncher> {
    fn launch(
        &self,
        app_id: &str,
        definition: &Value,
    ) -> BoxFuture<'static, Result<TaskSpec, String>> {
        let (this, app_id, definition) = (self.clone(), app_id.to_owned(), definition.clone());
        Box::pin(async move {
            let addr = this
                .start(&app_id, &definition)
                .await
                .map_err(|e| format!("cannot start a backend: {e}"))?;
            Ok(TaskSpec::running("127.0.0.1", vec![addr.port()]))
        })
    }

    fn stop(&self, _host: &str, ports: &[u16]) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        for port in ports {
            if let Some(backend) = running.remove(port) {
                backend.abort();
            }
        }
    }
}
