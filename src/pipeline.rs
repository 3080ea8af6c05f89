//! One refresh, end to end: a `/v2/apps` snapshot → model → routing table.
//!
//! The control loop (and `switchyard routes`) owns a [`Pipeline`]; it carries what must outlive
//! one refresh: the table generation, the last health verdicts, the resolved agents and the
//! endpoints' runtime state.

use crate::balance::Registry;
use crate::marathon::AppsSnapshot;
use crate::model::{self, HealthMemory, ModelOptions, Problem, ProblemKind};
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
        }
    }

    /// Builds the next table from a snapshot. Apps that failed to parse become problems.
    pub async fn rebuild(&mut self, snapshot: &AppsSnapshot) -> RoutingTable {
        let agents = self.resolver.resolve(&snapshot.apps).await;
        let mut catalog = model::catalog(&snapshot.apps, &self.model, &agents, &mut self.health);
        catalog.problems.extend(
            snapshot
                .errors
                .iter()
                .map(|e| Problem::app(&e.app_id, ProblemKind::MalformedApp, e.to_string())),
        );
        self.generation += 1;
        RoutingTable::build_with(catalog, &self.build, self.generation, &self.registry)
    }
}
