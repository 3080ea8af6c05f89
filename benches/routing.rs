//! Routing-core benchmarks: table build from 10,000 apps × 3 tasks, and host+path lookups among
//! 10,000 exact and 1,000 wildcard vhosts with 20 path prefixes.
//!
//! `cargo bench --bench routing`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use switchyard::marathon::parse_apps;
use switchyard::model::{self, AgentAddrs, HealthMemory, ModelOptions};
use switchyard::routing::{BuildOptions, RoutingTable};
use switchyard::sim::synthetic::{self, Shape};

// The binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: switchyard::alloc::Allocator = switchyard::alloc::Allocator;

fn table_build(c: &mut Criterion) {
    let apps = synthetic::apps(&Shape {
        exact_apps: 9_000,
        wildcard_apps: 980,
        path_apps: 20,
        tasks_per_app: 3,
        ..Shape::default()
    });
    let options = ModelOptions::default();
    let agents = AgentAddrs::default();
    let mut group = c.benchmark_group("table_build_10k_apps_30k_tasks");
    group.sample_size(20);

    group.bench_function("model_and_table", |b| {
        freed_as_the_balancer_frees(b, HealthMemory::default, |mut memory| {
            let catalog = model::catalog(black_box(&apps), &options, &agents, &mut memory);
            RoutingTable::build(catalog, &BuildOptions::default(), 1)
        })
    });

    group.bench_function("model_only", |b| {
        freed_as_the_balancer_frees(b, HealthMemory::default, |mut memory| {
            model::catalog(black_box(&apps), &options, &agents, &mut memory)
        })
    });

    let catalog = model::catalog(&apps, &options, &agents, &mut HealthMemory::default());
    group.bench_function("table_only", |b| {
        freed_as_the_balancer_frees(
            b,
            || catalog.clone(),
            |catalog| RoutingTable::build(black_box(catalog), &BuildOptions::default(), 1),
        )
    });
    // The balancer keeps its endpoint registry between builds: a rebuild finds every
    // endpoint's state already there (the first build creates them: `table_only`).
    let registry = switchyard::upstream::Registry::default();
    drop(RoutingTable::build_with(
        catalog.clone(),
        &BuildOptions::default(),
        1,
        &registry,
    ));
    group.bench_function("table_rebuild_same_endpoints", |b| {
        freed_as_the_balancer_frees(
            b,
            || catalog.clone(),
            |catalog| {
                RoutingTable::build_with(black_box(catalog), &BuildOptions::default(), 2, &registry)
            },
        )
    });
    // What a change to one app costs the table when the balancer patches its catalog: every
    // other service is the last catalog's, so its backend is reused.
    let previous =
        RoutingTable::build_with(catalog.clone(), &BuildOptions::default(), 3, &registry);
    group.bench_function("table_rebuild_one_app_changed", |b| {
        freed_as_the_balancer_frees(
            b,
            || {
                let mut changed = catalog.clone();
                let middle = changed.services.len() / 2;
                let service = &mut changed.services[middle];
                *service = std::sync::Arc::new((**service).clone());
                changed
            },
            |catalog| {
                RoutingTable::build_after(
                    black_box(catalog),
                    &BuildOptions::default(),
                    4,
                    &registry,
                    &previous.reusable(),
                )
            },
        )
    });
    let addrs: Vec<std::net::SocketAddr> = catalog
        .services
        .iter()
        .flat_map(|s| s.endpoints.iter().map(|e| e.addr))
        .collect();
    group.bench_function("registry_only", |b| {
        b.iter(|| {
            let states = registry.build();
            addrs
                .iter()
                .map(|a| states.state(*a).in_flight())
                .sum::<usize>()
        })
    });
    // Freeing a table this size: paid when the last request holding the old table finishes,
    // on whichever thread drops it, not by the build.
    group.bench_function("drop_table", |b| {
        b.iter_batched(
            || RoutingTable::build(catalog.clone(), &BuildOptions::default(), 1),
            drop,
            BatchSize::LargeInput,
        )
    });

    // The JSON parse of the same document, app by app, for scale.
    let body = serde_json::to_vec(&serde_json::json!({
        "apps": apps.iter().map(|a| serde_json::json!({
            "id": a.id,
            "labels": a.labels,
            "instances": a.instances,
            "portDefinitions": [{"port": a.port_definitions[0].port}],
            "tasks": a.tasks.iter().map(|t| serde_json::json!({
                "id": t.id, "host": t.host, "state": "TASK_RUNNING", "ports": t.ports,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    }))
    .unwrap();
    group.bench_function("parse_json", |b| {
        b.iter(|| parse_apps(black_box(&body)).unwrap())
    });
    group.finish();
}

/// Times `routine` alone, and frees what it built as the balancer frees a replaced table: on
/// the build's threads (rayon's pool), before the next build starts. The blocks the freeing
/// thread allocated go straight back to its free lists; freed on the bench's own thread, every
/// block would reach the next build through mimalloc's cross-thread free lists.
fn freed_as_the_balancer_frees<I, O: Send>(
    b: &mut criterion::Bencher<'_>,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) {
    b.iter_custom(|iters| {
        let mut timed = std::time::Duration::ZERO;
        for _ in 0..iters {
            let input = setup();
            let started = std::time::Instant::now();
            let built = routine(input);
            timed += started.elapsed();
            rayon::scope(|s| s.spawn(move |_| drop(built)));
        }
        timed
    })
}

fn lookup(c: &mut Criterion) {
    let table = synthetic::table(&Shape {
        exact_apps: 10_000,
        wildcard_apps: 1_000,
        path_apps: 20,
        tasks_per_app: 1,
        ..Shape::default()
    });
    assert!(table.route(b"app-5000.example.com", "/").is_some());

    let mut group = c.benchmark_group("lookup_10k_exact_1k_wildcard_20_paths");
    let cases: [(&str, &[u8], &str); 6] = [
        ("exact", b"app-5000.example.com", "/index.html"),
        (
            "exact_mixed_case_with_port",
            b"App-5000.Example.COM:8080",
            "/index.html",
        ),
        ("wildcard", b"www.wild-10500.example.net", "/"),
        ("path_last_of_20", b"paths.example.com", "/p19/resource"),
        ("miss", b"nobody.example.org", "/"),
        ("miss_deep_wildcard_walk", b"a.b.c.d.e.example.org", "/"),
    ];
    for (name, host, path) in cases {
        group.bench_function(name, |b| {
            b.iter(|| table.route(black_box(host), black_box(path)).is_some())
        });
    }
    group.finish();
}

criterion_group!(benches, table_build, lookup);
criterion_main!(benches);
