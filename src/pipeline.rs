//! One refresh, end to end: a `/v2/apps` snapshot → model → routing table.
//!
//! The control loop (and `switchyard routes`) owns a [`Pipeline`]; it carries what must outlive
//! one refresh: the table generation, the last health verdicts, the resolved agents and the
//! endpoints' runtime state.

use std::collections::BTreeSet;

use crate::balance::Registry;
use crate::marathon::AppsSnapshot;
use crate::model::{self, AgentAddrs, Catalog, HealthMemory, ModelOptions, Problem, ProblemKind};
use crate::resolve::AgentResolver;
use crate::routing::{BuildOptions, RoutingTable};

#[derive(Debug)]
pub struct Pipeline {
    model: ModelOptions,
    build: BuildOptions,
    resolver: AgentResolver,
    health: HealthMemory,
    registry: Registry,
    generation: u64,
    last: Option<LastBuild>,
}

/// What the last table was built from, for rebuilding only the apps that changed.
#[derive(Debug)]
struct LastBuild {
    /// The model's catalog (without the snapshot's parse errors, which are added each time).
    catalog: Catalog,
    agents: AgentAddrs,
    /// Every app could be rebuilt alone (see [`model::patchable`]).
    patchable: bool,
}

impl Pipeline {
    pub fn new(model: ModelOptions, build: BuildOptions) -> Pipeline {
        Pipeline {
            model,
            build,
            resolver: AgentResolver::default(),
            health: HealthMemory::default(),
            registry: Registry::default(),
            generation: 0,
            last: None,
        }
    }

    /// Builds the next table from a snapshot. Apps that failed to parse become problems.
    pub async fn rebuild(&mut self, snapshot: &AppsSnapshot) -> RoutingTable {
        let agents = self.resolver.resolve(&snapshot.apps).await;
        let catalog = model::catalog(&snapshot.apps, &self.model, &agents, &mut self.health);
        let patchable = snapshot.apps.iter().all(model::patchable);
        self.finish(snapshot, catalog, agents, patchable)
    }

    /// Builds the next table when only the apps in `changed` differ from the last snapshot:
    /// only they go through the model again. Falls back to [`Pipeline::rebuild`] whenever that
    /// could give a different table (an agent's address changed, a deployment group or an
    /// auto-assigned service port is involved).
    pub async fn rebuild_changed(
        &mut self,
        snapshot: &AppsSnapshot,
        changed: &BTreeSet<String>,
    ) -> RoutingTable {
        let agents = self.resolver.resolve(&snapshot.apps).await;
        let new_apps_patchable = snapshot
            .apps
            .iter()
            .filter(|app| changed.contains(&app.id))
            .all(model::patchable);
        let previous = match self.last.take() {
            Some(last) if last.patchable && last.agents == agents && new_apps_patchable => {
                last.catalog
            }
            _ => {
                let catalog =
                    model::catalog(&snapshot.apps, &self.model, &agents, &mut self.health);
                let patchable = snapshot.apps.iter().all(model::patchable);
                return self.finish(snapshot, catalog, agents, patchable);
            }
        };
        let catalog = model::catalog_patch(
            &previous,
            &snapshot.apps,
            changed,
            &self.model,
            &agents,
            &mut self.health,
        );
        self.finish(snapshot, catalog, agents, true)
    }

    fn finish(
        &mut self,
        snapshot: &AppsSnapshot,
        catalog: Catalog,
        agents: AgentAddrs,
        patchable: bool,
    ) -> RoutingTable {
        let mut with_errors = catalog.clone();
        with_errors.problems.extend(
            snapshot
                .errors
                .iter()
                .map(|e| Problem::app(&e.app_id, ProblemKind::MalformedApp, e.to_string())),
        );
        self.last = Some(LastBuild {
            catalog,
            agents,
            patchable,
        });
        self.generation += 1;
        RoutingTable::build_with(with_errors, &self.build, self.generation, &self.registry)
    }
}
