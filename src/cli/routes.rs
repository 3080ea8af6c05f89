//! `switchyard routes`: the routing table and its problems, from Marathon or an apps file; and
//! what `--dry` shares with it: reading the source once, building one table, the exit rule.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::{fail, heading, MarathonAccess, RoutingFlags};
use crate::marathon::{self, AppsSnapshot};
use crate::model::Severity;
use crate::routing::report::RoutesReport;
use crate::routing::RoutingTable;
use crate::serve::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// A `/v2/apps?embed=apps.tasks` JSON document to read instead of asking Marathon.
    #[arg(long, value_name = "FILE", conflicts_with = "marathon", help_heading = heading::SOURCE)]
    pub apps_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub access: MarathonAccess,
    /// Print JSON (the same document as the admin port's /routes).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub routing: RoutingFlags,
}

/// Runs `switchyard routes`: exits 1 when the table has error-severity problems.
pub async fn routes(args: RoutesArgs) -> ExitCode {
    let table = match read_and_build(args.apps_file.as_deref(), &args.access, &args.routing).await {
        Ok(table) => table,
        Err(message) => return fail(&message),
    };
    let report = RoutesReport::new(&table);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => return fail(&format!("cannot render JSON: {err}")),
        }
    } else {
        print!("{}", report.to_text());
    }
    exit_code(errors(&table))
}

/// Reads the source once (the file, or a full read of Marathon) and builds its table.
pub(super) async fn read_and_build(
    apps_file: Option<&Path>,
    access: &MarathonAccess,
    routing: &RoutingFlags,
) -> Result<RoutingTable, String> {
    let model = routing.model_options()?;
    let snapshot = read_once(apps_file, access).await?;
    let mut pipeline = Pipeline::new(model, routing.build_options());
    Ok(pipeline.rebuild(&snapshot).await)
}

async fn read_once(
    apps_file: Option<&Path>,
    access: &MarathonAccess,
) -> Result<AppsSnapshot, String> {
    if let Some(path) = apps_file {
        let body = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return marathon::parse_apps(&body).map_err(|e| format!("{}: {e}", path.display()));
    }
    let client = marathon::MarathonClient::new(access.config()?).map_err(|e| e.to_string())?;
    let body = client.fetch_apps().await.map_err(|e| e.to_string())?;
    marathon::parse_apps(&body).map_err(|e| e.to_string())
}

/// The table's error-severity problems.
pub(super) fn errors(table: &RoutingTable) -> usize {
    table
        .problems()
        .iter()
        .filter(|p| p.severity() == Severity::Error)
        .count()
}

/// `haproxy -c`'s and `nginx -t`'s rule: 0 when nothing is an error, else 1.
pub(super) fn exit_code(errors: usize) -> ExitCode {
    match errors {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
