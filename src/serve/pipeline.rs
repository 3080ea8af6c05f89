//! One refresh, end to end: a `/v2/apps` snapshot → model → routing table.
//!
//! The control loop (and `switchyard routes`) owns a [`Pipeline`]; it carries what must outlive
//! one refresh: the table generation, the last health verdicts, the resolved agents and the
//! endpoints' runtime state.

use std::collections::BTreeSet;

use crate::marathon::AppsSnapshot;
use crate::model::{self, AgentAddrs, Catalog, HealthMemory, ModelOptions, Problem, ProblemKind};
use crate::routing::{BuildOptions, Reusable, RoutingTable};
use crate::serve::resolve::AgentResolver;
use crate::upstream::Registry;

#[derive(Debug)]
pub struct Pipeline {
    model: ModelOptions,
    build: BuildOptions,
    resolver: AgentResolver,
    health: HealthMemory,
    registry: Registry,
    generation: u64,
    last: Option<LastBuild>,
    /// What the last table's successor may take over: its backends where their service did not
    /// change, its indexes where no route did.
    last_table: Reusable,
    /// Whether the last build rebuilt only the apps it was told changed.
    patched: bool,
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
        let registry = match &build.metrics {
            Some(metrics) => Registry::with_counters(crate::upstream::EndpointCounters {
                ejections: metrics.endpoint_ejections.clone(),
                idle_discarded: metrics.upstream_idle_discarded.clone(),
            }),
            None => Registry::default(),
        };
        Pipeline {
            model,
            build,
            resolver: AgentResolver::default(),
            health: HealthMemory::default(),
            registry,
            generation: 0,
            last: None,
            last_table: Reusable::default(),
            patched: false,
        }
    }

    /// Builds the next table from a snapshot. Apps that failed to parse become problems.
    pub async fn rebuild(&mut self, snapshot: &AppsSnapshot) -> RoutingTable {
        let agents = self.resolve(snapshot).await;
        self.build(snapshot, agents, None)
    }

    /// Like [`Pipeline::rebuild`] when only the apps in `changed` differ from the last
    /// snapshot.
    pub async fn rebuild_changed(
        &mut self,
        snapshot: &AppsSnapshot,
        changed: &BTreeSet<String>,
    ) -> RoutingTable {
        let agents = self.resolve_changed(snapshot, changed).await;
        self.build(snapshot, agents, Some(changed))
    }

    /// The agents' addresses the snapshot needs (the only part of a rebuild that waits on I/O).
    pub async fn resolve(&mut self, snapshot: &AppsSnapshot) -> AgentAddrs {
        self.resolver.resolve(&snapshot.apps).await
    }

    /// As [`Pipeline::resolve`] when only the `changed` apps differ from the last snapshot
    /// resolved: only names not known yet are looked up.
    pub async fn resolve_changed(
        &mut self,
        snapshot: &AppsSnapshot,
        changed: &BTreeSet<String>,
    ) -> AgentAddrs {
        let apps = changed.iter().filter_map(|id| snapshot.app(id));
        self.resolver.resolve_changed(apps).await
    }

    /// The CPU-bound part of a rebuild, model and table: serve mode runs it on a blocking
    /// thread, so that a list of tens of thousands of apps never stalls the proxy's workers.
    /// With `changed`, only those apps go through the model again; it falls back to a full
    /// build whenever that could give a different table (an agent's address changed, a
    /// deployment group or an auto-assigned service port is involved).
    pub fn build(
        &mut self,
        snapshot: &AppsSnapshot,
        agents: AgentAddrs,
        changed: Option<&BTreeSet<String>>,
    ) -> RoutingTable {
        let Some(changed) = changed else {
            let previous = self
                .last
                .take()
                .map(|last| last.catalog)
                .unwrap_or_default();
            let catalog = model::catalog_after(
                &previous,
                &snapshot.apps,
                &self.model,
                &agents,
                &mut self.health,
            );
            let catalog = keep_malformed_apps(catalog, &previous, snapshot);
            let patchable = snapshot.apps.iter().all(model::patchable);
            // A full build makes its services anew: only an unreadable app's kept services
            // could reuse a backend, and building those few costs less than looking up all.
            self.last_table = Reusable::default();
            self.patched = false;
            return self.finish(snapshot, catalog, agents, patchable);
        };
        let new_apps_patchable = changed
            .iter()
            .filter_map(|id| snapshot.app(id))
            .all(model::patchable);
        let previous = match self.last.take() {
            Some(last) if last.patchable && agents.extends(&last.agents) && new_apps_patchable => {
                last.catalog
            }
            // A full build, still after the last catalog (its last good labels).
            other => {
                self.last = other;
                return self.build(snapshot, agents, None);
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
        let catalog = keep_malformed_apps(catalog, &previous, snapshot);
        self.patched = true;
        self.finish(snapshot, catalog, agents, true)
    }

    /// Whether the last table was built from the changed apps alone: only their backends and
    /// problems may differ from the table before (else it fell back to a full build).
    pub fn last_build_patched(&self) -> bool {
        self.patched
    }

    fn finish(
        &mut self,
        snapshot: &AppsSnapshot,
        catalog: Catalog,
        agents: AgentAddrs,
        patchable: bool,
    ) -> RoutingTable {
        let mut with_errors = catalog.clone();
        with_errors.problems.extend(snapshot.errors.iter().map(|e| {
            let mut message = e.to_string();
            if catalog
                .services
                .iter()
                .any(|s| s.app_id.as_str() == e.app_id)
            {
                message.push_str("; the app keeps its last good services");
            }
            Problem::app(&e.app_id, ProblemKind::MalformedApp, message)
        }));
        self.last = Some(LastBuild {
            catalog,
            agents,
            patchable,
        });
        self.generation += 1;
        let table = RoutingTable::build_after(
            with_errors,
            &self.build,
            self.generation,
            &self.registry,
            &self.last_table,
        );
        self.last_table = table.reusable();
        table
    }
}

/// An app Marathon sent but that could not be read keeps the services it had in the last
/// catalog (its last good state) rather than vanishing: one unreadable app definition must not
/// take a working app offline. Its parse error is reported as a problem all the same.
fn keep_malformed_apps(
    mut catalog: Catalog,
    previous: &Catalog,
    snapshot: &AppsSnapshot,
) -> Catalog {
    if snapshot.errors.is_empty() || previous.services.is_empty() {
        return catalog;
    }
    let malformed: BTreeSet<&str> = snapshot.errors.iter().map(|e| e.app_id.as_str()).collect();
    let served: BTreeSet<&str> = catalog.services.iter().map(|s| s.app_id.as_str()).collect();
    let kept: Vec<_> = previous
        .services
        .iter()
        .filter(|s| malformed.contains(s.app_id.as_str()) && !served.contains(s.app_id.as_str()))
        .cloned()
        .collect();
    if kept.is_empty() {
        return catalog;
    }
    catalog.services.extend(kept);
    catalog
        .services
        .sort_by(|a, b| (&a.app_id, a.port_index).cmp(&(&b.app_id, b.port_index)));
    catalog
}
