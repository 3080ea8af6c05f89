//! `--pre-kill-hook`: an executable run before each kill, with three JSON arguments (the old
//! app as Marathon gave it, the ids of the tasks about to be killed, the new app); any exit
//! but 0 stops the deployment, as in `zdd.py`.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use super::ZddError;

pub async fn run(hook: &Path, old: &Value, tasks: &[String], new: &Value) -> Result<(), ZddError> {
    let tasks = Value::from(tasks.to_vec());
    let status = tokio::process::Command::new(hook)
        .arg(old.to_string())
        .arg(tasks.to_string())
        .arg(new.to_string())
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| ZddError::Hook(format!("cannot run {}: {e}", hook.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(ZddError::Hook(format!(
            "{} exited with {status}",
            hook.display()
        )))
    }
}
