//! `switchyard routes`: the routing table and its problems, from Marathon or an apps file.

use std::process::ExitCode;

use super::{fail, RoutesArgs};
use crate::marathon::{self, AppsSnapshot};
use crate::routing::report::RoutesReport;
use crate::serve::pipeline::Pipeline;

/// Runs `switchyard routes`.
pub async fn routes(args: RoutesArgs) -> ExitCode {
    let model = match args.routing.model_options() {
        Ok(model) => model,
        Err(message) => return fail(&message),
    };
    let snapshot = match load_snapshot(&args).await {
        Ok(snapshot) => snapshot,
        Err(message) => return fail(&message),
    };
    let mut pipeline = Pipeline::new(model, args.routing.build_options());
    let table = pipeline.rebuild(&snapshot).await;
    let report = RoutesReport::new(&table);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => return fail(&format!("cannot render JSON: {err}")),
        }
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::SUCCESS
}

async fn load_snapshot(args: &RoutesArgs) -> Result<AppsSnapshot, String> {
    if let Some(path) = &args.apps_file {
        let body = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return marathon::parse_apps(&body).map_err(|e| format!("{}: {e}", path.display()));
    }
    let client = marathon::MarathonClient::new(args.access.config()?).map_err(|e| e.to_string())?;
    let body = client.fetch_apps().await.map_err(|e| e.to_string())?;
    marathon::parse_apps(&body).map_err(|e| e.to_string())
}
